"""The LiveKit transport as a published package: a stock @pipecat-ai/client-js app
(tests/e2e/packed_app) installs the `npm pack` tarball of client/src/livekit-transport, is
bundled with Vite, served by the real token server, and talks to the real bot in headless
Chromium: it joins, hears the bot, and receives transcripts, bot output and word timings.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from processors.timing import TTS_TIMING_MESSAGE_TYPE
from tests.e2e.browser import (
    CLIENT,
    missing_prerequisite,
    page_results,
    run_browser,
    write_fake_mic_wav,
)
from tests.e2e.conftest import real_site
from tests.e2e.test_client_live import QUESTION, STARTUP_S
from tests.support.speech import speak

APP = Path(__file__).with_name("packed_app")
PACKAGE = CLIENT / "src" / "livekit-transport"
RECEIVED = "JSON.parse(JSON.stringify(window.received))"


def _run(*cmd: str, cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=300).stdout


@pytest.fixture(scope="module")
def packed_app_dist(tmp_path_factory) -> Path:
    """The example app with the packed transport installed from its tarball, built."""
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    app = tmp_path_factory.mktemp("packed-app")
    shutil.copytree(APP, app, dirs_exist_ok=True)
    tarball = _run("npm", "pack", "--silent", "--pack-destination", str(app),
                   cwd=PACKAGE).strip().splitlines()[-1]
    _run("npm", "install", "--prefer-offline", "--no-audit", "--no-fund", f"./{tarball}", cwd=app)
    installed = json.loads((app / "package.json").read_text())["dependencies"]
    assert installed["@talking-avatar/livekit-transport"].endswith(".tgz"), installed
    _run("node", str(CLIENT / "node_modules" / "vite" / "bin" / "vite.js"), "build", "--base", "./",
         "--outDir", "dist", cwd=app)
    return app / "dist"


@pytest.fixture(scope="module")
async def packed_site(packed_app_dist, livekit, ollama, stack_settings, stack_env,
                      tmp_path_factory):
    async with real_site(packed_app_dist, livekit=livekit, ollama=ollama,
                         stack_settings=stack_settings, stack_env=stack_env,
                         log_dir=tmp_path_factory.mktemp("packed-worker")) as url:
        yield url


async def test_stock_app_on_the_packed_transport_talks_with_the_bot(packed_site, tmp_path):
    samples, rate = speak(QUESTION)
    wav = write_fake_mic_wav(tmp_path / "question.wav", samples, rate, lead_s=1.0, tail_s=12.0)
    steps = [
        {"waitFor": "window.received?.ready", "timeout_s": STARTUP_S},
        {"waitFor": "received.transcripts.some(t => /capital/i.test(t))", "timeout_s": 90},
        {"waitFor": f"received.serverMessages.includes('{TTS_TIMING_MESSAGE_TYPE}')",
         "timeout_s": 180},
        {"waitFor": "received.botOutputs >= 2 && received.botAudioPeak > 0.05", "timeout_s": 60},
        {"eval": RECEIVED},
    ]
    report = await run_browser(
        {
            "url": f"{packed_site}/?room=e2e-packed&name=Packed",
            "wav": str(wav),
            "viewport": [800, 600],
            "steps": steps,
            "diagnose": RECEIVED,
        },
        timeout_s=STARTUP_S + 300,
    )
    received = page_results(report)[-1]
    print(f"\nstock app on the packed transport: {json.dumps(received)[:400]}")
    assert not received["errors"]
