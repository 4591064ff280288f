"""The runtime resolves only installed Whisper models; downloading is setup's step (issue 11)."""

from __future__ import annotations

import pytest

from avatar_core.errors import StackError
from avatar_core.whisper import installed_whisper_model
from token_server.health import whisper_status


def test_a_named_model_not_in_the_cache_asks_for_setup_and_downloads_nothing(tmp_path):
    with pytest.raises(StackError, match=r"not installed .*run `\./avatar setup`"):
        installed_whisper_model("tiny.en", tmp_path)
    assert not any(tmp_path.rglob("model.bin"))


def test_health_names_a_model_setup_has_not_downloaded(tmp_path):
    status = whisper_status("small.en", tmp_path)
    assert status["ok"] is False
    assert "./avatar setup" in status["detail"]


def test_the_offline_model_and_a_model_folder_resolve(tmp_path, whisper_model):
    assert installed_whisper_model("", tmp_path) == whisper_model
    assert installed_whisper_model(whisper_model, tmp_path) == whisper_model
    with pytest.raises(StackError, match="without model.bin"):
        installed_whisper_model(str(tmp_path), tmp_path)
