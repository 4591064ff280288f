"""WorkerSettings.from_env: the worker's agent name, room capacity, prewarmed processes."""

from __future__ import annotations

import pytest

from bot.settings import DEFAULT_AGENT_NAME, WorkerSettings

WORKER_ENV = ("BOT_AGENT_NAME", "BOT_WORKER_MAX_ROOMS", "BOT_WORKER_LOAD_THRESHOLD",
              "BOT_WORKER_IDLE_PROCESSES", "BOT_WORKER_DRAIN_TIMEOUT_S", "BOT_WORKER_HTTP_HOST",
              "BOT_WORKER_HTTP_PORT", "BOT_WORKER_SPREAD_S")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in WORKER_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_take_three_rooms_with_one_process_kept_warm():
    s = WorkerSettings.from_env()
    assert s.agent_name == DEFAULT_AGENT_NAME
    assert (s.max_rooms, s.load_threshold, s.idle_processes) == (3, 1.0, 1)
    assert s.http_host == "127.0.0.1"
    assert s.spread_s == 0.0  # one worker host: take every room offered


def test_values_from_the_environment(clean_env):
    clean_env.setenv("BOT_AGENT_NAME", "avatar-eu")
    clean_env.setenv("BOT_WORKER_MAX_ROOMS", "8")
    clean_env.setenv("BOT_WORKER_LOAD_THRESHOLD", "0.75")
    clean_env.setenv("BOT_WORKER_IDLE_PROCESSES", "2")
    clean_env.setenv("BOT_WORKER_SPREAD_S", "2.5")
    s = WorkerSettings.from_env()
    got = (s.agent_name, s.max_rooms, s.load_threshold, s.idle_processes, s.spread_s)
    assert got == ("avatar-eu", 8, 0.75, 2, 2.5)


@pytest.mark.parametrize(("name", "value"), [("BOT_WORKER_MAX_ROOMS", "0"),
                                             ("BOT_WORKER_MAX_ROOMS", "lots"),
                                             ("BOT_WORKER_IDLE_PROCESSES", "-1"),
                                             ("BOT_WORKER_SPREAD_S", "-1"),
                                             ("BOT_AGENT_NAME", "")])
def test_bad_values_name_the_variable(clean_env, name, value):
    clean_env.setenv(name, value)
    if name == "BOT_AGENT_NAME":
        # An empty name falls back to the default (a worker with no name would take every room).
        assert WorkerSettings.from_env().agent_name == DEFAULT_AGENT_NAME
        return
    with pytest.raises(ValueError, match=name):
        WorkerSettings.from_env()
