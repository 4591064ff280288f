"""The SadTalker coefficient cache next to an avatar picture is keyed by the picture and by the
3DMM weights that made the coefficients: a cache made with one checkpoint is never reused with
another (issue 15)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from processors.face.sadtalker import cached_coefficients, weights_digest


class Counting:
    """A coefficient computation that counts its calls and returns a new value each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return np.full((1, 73), self.calls, np.float32)


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "avatar.png"
    path.write_bytes(b"a picture")
    return path


def test_other_weights_recompute_and_replace_the_cached_coefficients(picture):
    compute = Counting()
    first = cached_coefficients(picture, size=256, weights="weights-a", compute=compute)
    again = cached_coefficients(picture, size=256, weights="weights-a", compute=compute)
    assert compute.calls == 1 and np.array_equal(first, again) and again.shape == (1, 73)

    other = cached_coefficients(picture, size=256, weights="weights-b", compute=compute)
    assert compute.calls == 2 and other[0, 0] == 2
    cache = json.loads(picture.with_name("avatar.png.sadtalker-256.json").read_text())
    assert cache["weights"] == "weights-b"
    # Back to the first weights: their coefficients were replaced, so they are made again.
    cached_coefficients(picture, size=256, weights="weights-a", compute=compute)
    assert compute.calls == 3


def test_a_changed_picture_or_an_old_unkeyed_cache_is_recomputed(picture):
    compute = Counting()
    cached_coefficients(picture, size=256, weights="w", compute=compute)
    picture.write_bytes(b"another picture")
    cached_coefficients(picture, size=256, weights="w", compute=compute)
    assert compute.calls == 2
    # A cache written before it was keyed by the weights (version 1, no "weights").
    cache = picture.with_name("avatar.png.sadtalker-256.json")
    old = json.loads(cache.read_text())
    cache.write_text(json.dumps({"version": 1, "sha256": old["sha256"],
                                 "coefficients": old["coefficients"]}))
    cached_coefficients(picture, size=256, weights="w", compute=compute)
    assert compute.calls == 3


def test_the_weights_digest_follows_names_shapes_and_values():
    torch = pytest.importorskip("torch", reason="needs `uv sync --group sadtalker`")
    torch.manual_seed(0)
    weights = torch.nn.Linear(4, 3).state_dict()
    same = {name: value.clone() for name, value in weights.items()}
    assert weights_digest(weights) == weights_digest(same)
    changed = dict(same, bias=same["bias"] + 1e-3)
    assert weights_digest(changed) != weights_digest(weights)
    renamed = {f"x.{name}": value for name, value in weights.items()}
    assert weights_digest(renamed) != weights_digest(weights)
    reshaped = dict(weights, weight=weights["weight"].reshape(4, 3))
    assert weights_digest(reshaped) != weights_digest(weights)
    assert weights_digest(dict(weights, n=torch.tensor(1, dtype=torch.bfloat16))) != (
        weights_digest(dict(weights, n=torch.tensor(1.0))))
