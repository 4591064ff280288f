"""The one settings tree (issue 11): `.env.example` and the tree name the same variables, every
example value parses, and on/off values mean the same everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from avatar_core.settings import AvatarSettings, Section, load_settings
from bot.settings import BotSettings

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
VARIABLE = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")


def example() -> dict[str, str]:
    """The variables of .env.example with their shown values (quotes and comments removed)."""
    found = {}
    for line in EXAMPLE.read_text().splitlines():
        if match := VARIABLE.match(line):
            value = re.sub(r"\s+#.*$", "", match[2]).strip()
            found[match[1]] = value[1:-1] if value[:1] == value[-1:] == '"' else value
    return found


def tree_variables(model: type[BaseModel] = AvatarSettings, path: tuple[str, ...] = ()
                   ) -> dict[str, tuple[str, ...]]:
    """Every variable the tree reads, with the path of its field."""
    found: dict[str, tuple[str, ...]] = {}
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found |= tree_variables(kind, (*path, name))
        else:
            assert issubclass(model, Section)
            found[model.env_name(name)] = (*path, name)
    return found


def value_at(tree: AvatarSettings, path: tuple[str, ...]):
    node = tree
    for name in path:
        node = getattr(node, name)
    return node


@pytest.fixture
def clean_env(monkeypatch):
    for name in tree_variables():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_example_and_the_tree_name_the_same_variables():
    documented, parsed = set(example()), set(tree_variables())
    assert documented - parsed == set(), "in .env.example but not read by the tree"
    assert parsed - documented == set(), "read by the tree but not in .env.example"


def test_every_example_value_is_parsed(clean_env):
    values = example()
    for name, value in values.items():
        clean_env.setenv(name, value)
    tree = load_settings()
    for name, path in tree_variables().items():
        if values[name]:
            assert value_at(tree, path) is not None, f"{name}={values[name]!r} was not read"


@pytest.mark.parametrize(("word", "meaning"), [
    ("1", True), ("on", True), ("yes", True), ("TRUE", True),
    ("0", False), ("off", False), ("no", False), ("False", False),
])
def test_on_off_words_mean_the_same_everywhere(clean_env, word, meaning):
    for name in ("BOT_GROUP_ONLY_WHEN_ADDRESSED", "GPT_SOVITS_FALLBACK",
                 "AVATAR_ALIGN_SILENCES", "RECORDS_ENABLED", "AVATAR_ALLOW_INSECURE_PUBLIC"):
        clean_env.setenv(name, word)
    tree = load_settings()
    bot = BotSettings.from_tree(tree)
    assert bot.group_answer_only_when_addressed is meaning
    assert tree.bot.gpt_sovits.fallback is meaning
    assert tree.bot.aligner.silences is meaning
    assert tree.records.enabled is meaning
    assert tree.token_server.allow_insecure_public is meaning


def test_group_only_when_addressed_off_is_off_and_records_on_is_on(clean_env):
    clean_env.setenv("BOT_GROUP_ONLY_WHEN_ADDRESSED", "off")
    clean_env.setenv("RECORDS_ENABLED", "on")
    assert BotSettings.from_env().group_answer_only_when_addressed is False
    assert load_settings().records.enabled is True


def test_empty_means_the_default_and_a_bad_value_names_its_variable(clean_env):
    clean_env.setenv("FACE_FPS", "")
    clean_env.setenv("BOT_WORKER_MAX_ROOMS", "")
    assert BotSettings.from_env().face.fps == 25
    clean_env.setenv("RECORDS_ENABLED", "sometimes")
    with pytest.raises(ValueError, match="RECORDS_ENABLED='sometimes'"):
        load_settings()


def test_the_a_v_queue_must_hold_two_face_frames_and_stay_short(clean_env):
    for bad in ("60", "1200"):
        clean_env.setenv("BOT_AUDIO_OUT_QUEUE_MS", bad)
        with pytest.raises(ValueError, match=f"BOT_AUDIO_OUT_QUEUE_MS={bad} must hold at least"):
            BotSettings.from_env()
    clean_env.setenv("BOT_AUDIO_OUT_QUEUE_MS", "80")
    assert BotSettings.from_env().audio_out_queue_ms == 80
    clean_env.setenv("FACE_FPS", "10")  # two frames are 200 ms now
    with pytest.raises(ValueError, match="200 ms at FACE_FPS=10"):
        BotSettings.from_env()
