"""The small helpers every layer shares (issue 11): a file's sha256 and Ollama's model names."""

from __future__ import annotations

import hashlib

import pytest

from avatar_core.files import BLOCK_BYTES, file_sha256
from avatar_core.ollama import lists_model


def test_file_sha256_is_the_digest_of_the_whole_file_across_blocks(tmp_path):
    data = bytes(range(256)) * (BLOCK_BYTES // 256 + 3)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


TAGS = {"models": [{"name": "qwen:0.5b", "model": "qwen:0.5b"}, {"model": "tiny:latest"}, "junk"]}


@pytest.mark.parametrize(
    ("tags", "model", "listed"),
    [
        (TAGS, "qwen:0.5b", True),
        (TAGS, "tiny", True),
        (TAGS, "qwen", False),
        (TAGS, "tiny:q4", False),
        ({"models": []}, "tiny", False),
        (["tiny:latest"], "tiny", False),
        (None, "tiny", False),
    ],
)
def test_ollama_lists_a_model_by_name_or_latest_tag(tags, model, listed):
    assert lists_model(tags, model=model) is listed
