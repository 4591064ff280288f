"""Python side of the e2e browser driver: run tests/e2e/browser.mjs (playwright-core + Debian's
headless Chromium) as a subprocess without blocking the event loop, build the client when its
sources changed, and write fake-microphone WAVs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from loguru import logger

from tests.support.audio_files import write_wav

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"
DIST = CLIENT / "dist"
DRIVER = Path(__file__).with_name("browser.mjs")
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Where e2e tests save their page screenshots instead of a temporary folder: set it to `docs`
# to refresh the README's pictures (docs/client.png, docs/client-3d.png) from a passing run.
SCREENSHOT_DIR_VAR = "E2E_SCREENSHOT_DIR"

# Chromium reads the fake-capture WAV in 10 ms chunks and loops it; 48 kHz mono int16 is what
# its WAV reader handles without surprises.
FAKE_MIC_RATE = 48000


def screenshot_dir(default: Path) -> Path:
    """$E2E_SCREENSHOT_DIR when set (created; relative to the checkout), else `default`."""
    chosen = os.environ.get(SCREENSHOT_DIR_VAR)
    folder = ROOT / chosen if chosen else default
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def missing_prerequisite() -> str | None:
    """Why browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (CLIENT / "node_modules" / "playwright-core").is_dir():
        return "client/node_modules is missing (cd client && npm ci)"
    return None


def _newest_source_mtime() -> float:
    paths = [*CLIENT.glob("src/**/*"), *CLIENT.glob("*.html"), CLIENT / "vite.config.js",
             CLIENT / "package-lock.json", CLIENT / "scripts" / "make-head-glb.mjs"]
    return max(p.stat().st_mtime for p in paths if p.is_file())


def ensure_client_built() -> Path:
    """client/dist, rebuilt with `npm run build` only when a source is newer than the build."""
    index = DIST / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source_mtime():
        logger.info("building the client (npm run build)")
        subprocess.run(
            ["npm", "run", "build"], cwd=CLIENT, check=True, capture_output=True, timeout=300
        )
    return DIST


def write_fake_mic_wav(
    path: Path, samples: np.ndarray, sample_rate: int, *, lead_s: float, tail_s: float
) -> Path:
    """Speech padded with silence, as Chromium's looping fake microphone will play it."""
    from tests.support.human import resample

    speech = (
        resample(samples, sample_rate, FAKE_MIC_RATE) if sample_rate != FAKE_MIC_RATE else samples
    )
    pcm = np.concatenate(
        [
            np.zeros(int(lead_s * FAKE_MIC_RATE), np.int16),
            speech.astype(np.int16),
            np.zeros(int(tail_s * FAKE_MIC_RATE), np.int16),
        ]
    )
    return write_wav(path, pcm, FAKE_MIC_RATE)


async def run_browser(config: dict, *, timeout_s: float) -> dict:
    """Run the driver with `config` (see browser.mjs); returns its JSON report."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(DRIVER),
        json.dumps(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0 or not out:
        raise RuntimeError(f"browser driver failed (rc {proc.returncode}): {err.decode()[-2000:]}")
    report = json.loads(out)
    if not report["ok"]:
        logger.error("browser console tail:\n" + "\n".join(report["console"][-60:]))
        logger.error(f"page errors: {report['pageErrors']}")
        logger.error(f"diagnosis: {json.dumps(report['diagnosis'], indent=1)[:4000]}")
    return report


def page_results(report: dict) -> list:
    """The results of a driver run whose steps all passed without a page error (else fails)."""
    assert report["ok"], report["error"]
    assert not report["pageErrors"], report["pageErrors"]
    return report["results"]
