"""Find or build the two server binaries: livekit-server and Ollama.

Order for each: the one on PATH, then the one cached in $AVATAR_CACHE/bin, then a build from
its Go module with `go install` (when Go is present), else a one-line instruction.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from avatar_core.errors import StackError
from stack.progress import run_streamed, step
from stack.pypi import pip_download

LIVEKIT_MODULE = "github.com/livekit/livekit-server/cmd/server"
LIVEKIT_VERSION = "v1.13.5"
OLLAMA_MODULE = "github.com/ollama/ollama"
# The last Ollama release whose CPU backend builds with plain cgo (later ones need CMake downloads).
OLLAMA_VERSION = "v0.24.0"
# Go module zips drop `vendor/` folders, so llama.cpp's vendored headers come from elsewhere:
# nlohmann/json and stb from Debian, miniaudio.h from the `miniaudio` sdist on PyPI.
OLLAMA_SYSTEM_HEADERS = {
    "/usr/include/nlohmann/json_fwd.hpp": "nlohmann-json3-dev",
    "/usr/include/stb/stb_image.h": "libstb-dev",
}
MINIAUDIO_SDIST = "miniaudio==1.71"
# Plain cgo compiles ggml's CPU backend without SIMD unless told to: build for the CPU it runs on
# (the binary is built on, and cached for, this machine). Without AMX: on a CPU that has it
# (Xeon Sapphire Rapids and later) ggml then calls its AMX buffer type, whose source Ollama's
# Go package does not compile, and the link fails (`undefined reference to
# ggml_backend_amx_buffer_type`).
OLLAMA_CFLAGS = "-O3 -march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"

LIVEKIT_INSTALL_HINT = ("install Go (https://go.dev/dl, then run setup again to build it) or put "
                        "livekit-server on PATH (https://docs.livekit.io/home/self-hosting/local/)")
OLLAMA_INSTALL_HINT = (
    "install Go (https://go.dev/dl, then run setup again to build it) or install "
    "Ollama with its installer (https://ollama.com/download)"
)


def _bin_dir(cache: Path) -> Path:
    path = cache / "bin"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _go() -> str | None:
    return shutil.which("go")


def _go_install(
    module: str,
    version: str,
    *,
    binary: str,
    target: Path,
    what: str,
    hint: str,
    extra_env: dict[str, str] | None = None,
    log: Path,
) -> Path:
    go = _go()
    if go is None:
        raise StackError(f"{what} is not on PATH and Go is not installed: {hint}")
    step(f"building {what} {version} from its Go module (first run only; several minutes)")
    with tempfile.TemporaryDirectory(dir=target.parent) as gobin:
        env = {
            **os.environ,
            "GOBIN": gobin,
            "GOFLAGS": os.environ.get("GOFLAGS", "") + " -trimpath",
            **(extra_env or {}),
        }
        run_streamed(
            [go, "install", "-v", f"{module}@{version}"],
            what=f"go install {what}",
            env=env,
            log=log,
        )
        shutil.move(os.path.join(gobin, binary), target)
    target.chmod(0o755)
    return target


def _installed(command: str, cached: Path) -> Path | None:
    """The command on PATH, else the cached build, else None."""
    found = shutil.which(command)
    if found:
        return Path(found)
    return cached if cached.exists() else None


def livekit_server(cache: Path) -> Path:
    """Path of a livekit-server binary, building it on first use when needed."""
    target = _bin_dir(cache) / f"livekit-server-{LIVEKIT_VERSION}"
    if found := _installed("livekit-server", target):
        return found
    return _go_install(
        LIVEKIT_MODULE,
        LIVEKIT_VERSION,
        binary="server",
        target=target,
        what="livekit-server",
        hint=LIVEKIT_INSTALL_HINT,
        log=cache / "logs" / "livekit-build.log",
    )


def _ollama_headers(cache: Path) -> Path:
    """Provide the headers llama.cpp expects in its vendor folder; returns the include dir."""
    missing = [pkg for header, pkg in OLLAMA_SYSTEM_HEADERS.items() if not os.path.exists(header)]
    if missing:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            run_streamed(
                ["apt-get", "install", "-y", "-q", *missing],
                what="apt-get install",
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        else:
            raise StackError(
                f"building Ollama needs C++ headers: run `sudo apt-get install -y "
                f"{' '.join(missing)}` (or your system's equivalent), then setup again"
            )
    include = cache / "build" / "include"
    header = include / "miniaudio" / "miniaudio.h"
    if not header.exists():
        sdist = pip_download(MINIAUDIO_SDIST, cache / "downloads", sdist=True)
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("miniaudio/miniaudio.h"))
            header.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(header, "wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst)
    return include


def ollama(cache: Path) -> Path:
    """Path of an ollama binary, building the CPU version on first use when needed."""
    target = _bin_dir(cache) / f"ollama-{OLLAMA_VERSION}-native"
    if found := _installed("ollama", target):
        return found
    include = _ollama_headers(cache)
    cppflags = f"{os.environ.get('CGO_CPPFLAGS', '')} -I{include}".strip()
    return _go_install(
        OLLAMA_MODULE,
        OLLAMA_VERSION,
        binary="ollama",
        target=target,
        what="ollama",
        hint=OLLAMA_INSTALL_HINT,
        extra_env={
            "CGO_CPPFLAGS": cppflags,
            "CGO_ENABLED": "1",
            "CGO_CFLAGS": OLLAMA_CFLAGS,
            "CGO_CXXFLAGS": OLLAMA_CFLAGS,
        },
        log=cache / "logs" / "ollama-build.log",
    )
