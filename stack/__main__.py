"""`python -m stack setup|up`: provide everything the local stack needs, or run it.

setup  builds/finds livekit-server and Ollama, provides the offline models, optionally the
       browser client (--client) and the test tiers' Debian packages (--browser: Chromium,
       espeak-ng, redis-server). Idempotent.
up     setup, then livekit-server + Ollama + one avatar worker + the token server on loopback,
       each started again (with backoff) when it exits; prints the URL to open.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse

from avatar_core.errors import StackError
from avatar_core.settings import AvatarSettings, StackSettings, load_settings
from bot.settings import WORKER_REGISTERED_LOG
from stack import binaries, models, services
from stack.progress import run_streamed, step

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIR = ROOT / "client"
# The worker imports Pipecat and prewarms a job process (models) before LiveKit registers it.
WORKER_START_TIMEOUT_S = 240
SUPERVISE_INTERVAL_S = 0.5


def _is_loopback(url: str) -> bool:
    return urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


def ensure_ollama(settings: StackSettings, exits: ExitStack,
                  supervisor: services.Supervisor | None = None) -> Path:
    """Use the Ollama answering at OLLAMA_URL, or start one on loopback (kept running by
    `supervisor` when given); returns its binary."""
    answering = services.http_ok(settings.ollama_url)
    if not answering and not _is_loopback(settings.ollama_url):
        raise StackError(
            f"Ollama does not answer at OLLAMA_URL={settings.ollama_url}: start it there "
            f"(`ollama serve`) or unset OLLAMA_URL to run a local one"
        )
    binary = binaries.ollama(settings.cache)
    if answering:
        return binary
    server = services.ollama_server(
        binary,
        port=settings.ollama_port,
        models_dir=settings.cache / "ollama",
        log_path=settings.cache / "logs" / "ollama.log",
    )
    exits.callback(server.stop)  # also when a signal ends the stack while it starts
    server.start()
    if supervisor is not None:
        supervisor.watch(server)
    return binary


def ensure_livekit(
    settings: StackSettings,
    exits: ExitStack,
    supervisor: services.Supervisor,
    *,
    webhook_urls: list[str],
) -> None:
    """Use the LiveKit server answering at LIVEKIT_URL, or start one on loopback, kept running."""
    http_url = settings.livekit_url.replace("ws://", "http://").replace("wss://", "https://")
    if services.http_ok(http_url):
        return
    if not _is_loopback(settings.livekit_url):
        raise StackError(
            f"LiveKit does not answer at LIVEKIT_URL={settings.livekit_url}: check the "
            f"URL or unset it to run a local livekit-server"
        )
    server = services.livekit_server(
        binaries.livekit_server(settings.cache),
        port=settings.livekit_port,
        tcp_port=settings.livekit_rtc_tcp_port,
        udp_port=settings.livekit_rtc_udp_port,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret,
        log_path=settings.cache / "logs" / "livekit.log",
        webhook_urls=webhook_urls,
    )
    exits.callback(server.stop)  # also when a signal ends the stack while it starts
    server.start()
    supervisor.watch(server)


def build_client() -> None:
    """npm ci + vite build of client/ (skipped when dist/ is newer than every source file)."""
    npm = shutil.which("npm")
    dist = CLIENT_DIR / "dist" / "index.html"
    if npm is None and dist.exists():
        return  # a prebuilt client (the Docker image builds it in its own stage)
    if npm is None:
        raise StackError(
            "npm is not installed: install Node.js 20+ (https://nodejs.org) to build "
            "the browser client, then run setup again"
        )
    sources = [
        p
        for p in CLIENT_DIR.rglob("*")
        if p.is_file() and "node_modules" not in p.parts and "dist" not in p.parts
    ]
    if dist.exists() and all(p.stat().st_mtime <= dist.stat().st_mtime for p in sources):
        return
    if not (CLIENT_DIR / "node_modules" / ".package-lock.json").exists():
        run_streamed([npm, "ci", "--no-audit", "--no-fund"], what="npm ci", cwd=CLIENT_DIR)
    run_streamed([npm, "run", "build"], what="vite build", cwd=CLIENT_DIR)


# Debian packages of the test tiers: the browser of the e2e tier, a second, unlike test voice,
# and the Redis the LiveKit cluster test's two nodes share.
TEST_PACKAGES = {
    "chromium": "chromium", "espeak-ng": "espeak-ng", "redis-server": "redis-server",
}


def install_browser() -> None:
    """Debian's chromium, espeak-ng and redis-server for the test tiers (apt-get; needs root)."""
    missing = [pkg for binary, pkg in TEST_PACKAGES.items() if not shutil.which(binary)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(
            f"the tests need {' and '.join(missing)}: run "
            f"`sudo apt-get install -y {' '.join(missing)}`"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_streamed(["apt-get", "update", "-q"], what="apt-get update", env=env)
    run_streamed(
        ["apt-get", "install", "-y", "-q", *missing],
        what=f"apt-get install {' '.join(missing)}",
        env=env,
    )


def setup(tree: AvatarSettings, *, client: bool, browser: bool) -> None:
    settings = tree.stack
    step(f"cache folder: {settings.cache} (set AVATAR_CACHE to move it)")
    step(f"livekit-server: {binaries.livekit_server(settings.cache)}")
    step(f"whisper model: {models.whisper_model(settings.whisper_model, settings.cache)}")
    aligner_model = tree.bot.aligner.model
    if aligner_model:
        step(f"aligner whisper model: {models.whisper_model(aligner_model, settings.cache)}")
    with ExitStack() as exits:
        ollama_bin = ensure_ollama(settings, exits)
        step(f"ollama: {ollama_bin}")
        models.ensure_ollama_model(
            ollama_bin=ollama_bin,
            url=settings.ollama_url,
            name=settings.ollama_model,
            cache=settings.cache,
        )
        step(f"LLM model: {settings.ollama_model} ready")
    if client:
        build_client()
        step("browser client built: client/dist")
    if browser:
        install_browser()
        step(f"chromium: {shutil.which('chromium')}")


def _stop_on(signum: int, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def up(tree: AvatarSettings) -> None:
    settings = tree.stack
    # Ctrl-C, `docker stop` and service managers all end the stack the same way, also when the
    # shell that started it ignores SIGINT (background jobs).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_on)
    setup(tree, client=True, browser=False)
    port = settings.token_server_port
    services.require_free(port, what="the token server", setting="TOKEN_SERVER_PORT")
    logs = settings.cache / "logs"
    supervisor = services.Supervisor()
    with ExitStack() as exits:
        ensure_livekit(
            settings,
            exits,
            supervisor,
            webhook_urls=[f"http://127.0.0.1:{port}/api/livekit/webhook"],
        )
        ensure_ollama(settings, exits, supervisor)
        models.load_ollama_model(settings.ollama_url, settings.ollama_model)
        for server, timeout in (
            (
                services.ManagedServer(
                    name="avatar worker",
                    cmd=[sys.executable, "-m", "bot", "worker"],
                    env=dict(os.environ),
                    ready_url=None,
                    ready_log=WORKER_REGISTERED_LOG,
                    log_path=logs / "worker.log",
                ),
                WORKER_START_TIMEOUT_S,
            ),
            (
                services.ManagedServer(
                    name="token server",
                    cmd=[sys.executable, "-m", "token_server"],
                    env=dict(os.environ),
                    ready_url=f"http://127.0.0.1:{port}/health",
                    log_path=logs / "token_server.log",
                ),
                60,
            ),
        ):
            exits.callback(server.stop)  # also when a signal ends the stack while it starts
            server.start(timeout=timeout)
            supervisor.watch(server)
        print(
            f"\n  Talking avatar is up: open http://127.0.0.1:{port}/ in your browser"
            f"\n  (logs in {logs}; Ctrl-C stops everything)\n",
            flush=True,
        )
        try:
            while True:
                supervisor.check()
                time.sleep(SUPERVISE_INTERVAL_S)
        except KeyboardInterrupt:
            step("stopping")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_setup = sub.add_parser("setup", help="build/fetch binaries and models (idempotent)")
    p_setup.add_argument("--client", action="store_true", help="also build the browser client")
    p_setup.add_argument(
        "--browser",
        action="store_true",
        help="also install the test tiers' Debian packages (Chromium, espeak-ng, redis-server)",
    )
    sub.add_parser("up", help="setup, then run the local stack and print the URL")
    args = parser.parse_args(argv)
    tree = load_settings()
    try:
        if args.command == "setup":
            setup(tree, client=args.client, browser=args.browser)
        else:
            up(tree)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
