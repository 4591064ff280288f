"""The avatar tool: prepare writes the cache and a preview; render writes an MP4 with sound."""

from __future__ import annotations

import shutil

import av
import cv2
import numpy as np

from processors.face.base import DEFAULT_AVATAR
from processors.face.landmarks import cache_path
from processors.face.tool import main
from tests.support.audio_files import write_wav


def test_prepare_writes_cache_and_preview(tmp_path):
    image = tmp_path / "me.png"
    shutil.copy(DEFAULT_AVATAR, image)
    assert main(["prepare", str(image)]) == 0
    assert cache_path(image).is_file()
    assert (tmp_path / "me.preview.png").stat().st_size > 10_000


def test_render_wav_to_mp4_with_sound(tmp_path):
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate
    write_wav(tmp_path / "in.wav", 9000 * np.sin(2 * np.pi * 200 * t) * (t > 0.5), rate)
    out, strip = tmp_path / "out.mp4", tmp_path / "strip.png"
    assert (
        main(["render", "--wav", str(tmp_path / "in.wav"), "-o", str(out), "--strip", str(strip)])
        == 0
    )
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert (video.width, video.height) == (512, 512)
        assert audio.sample_rate == rate
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 38  # 1.5 s at 25 fps, last frame partly filled
    assert strip.is_file()


def test_render_reports_bad_input(tmp_path, capsys):
    bogus = tmp_path / "bad.wav"
    bogus.write_text("not a wav")
    assert main(["render", "--wav", str(bogus), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "not a readable WAV" in capsys.readouterr().err
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((300, 300, 3), 128, np.uint8))
    assert main(["prepare", str(flat)]) == 2
    assert "no face" in capsys.readouterr().err
