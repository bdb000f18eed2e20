"""vcframe.metrics.frame_rate: spectral lines at multiples of a vocoder's frame rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from vcframe.errors import InputError
from vcframe.metrics.frame_rate import frame_rate_lines

RATE = 16000
HOP = 200


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * RATE)).astype(np.float32) * 0.1


def test_noise_has_no_lines() -> None:
    lines = frame_rate_lines(_noise(3.0), RATE, hop_length=HOP)
    assert lines.frame_rate_hz == pytest.approx(80.0)
    assert lines.harmonics == 93  # 80 .. 7440 Hz
    assert abs(lines.median_db) < 1.5


def test_a_pattern_repeated_every_frame_makes_lines() -> None:
    noise = _noise(3.0)
    pattern = np.random.default_rng(1).standard_normal(HOP).astype(np.float32) * 0.1
    buzz = noise + np.tile(pattern, noise.size // HOP)
    lines = frame_rate_lines(buzz, RATE, hop_length=HOP)
    assert lines.median_db > 10
    assert lines.low_db > 5 and lines.high_db > 5
    # the same audio judged at another hop: its lines are not at that frame rate's multiples
    assert frame_rate_lines(buzz, RATE, hop_length=256).median_db < 3


def test_a_voice_like_tone_off_the_frame_rate_has_no_lines(tmp_path: Path) -> None:
    time = np.arange(3 * RATE) / RATE
    tone = sum(np.sin(2 * np.pi * 123.0 * k * time) / k for k in range(1, 30)).astype(np.float32) * 0.1
    path = tmp_path / "tone.wav"
    soundfile.write(path, tone + _noise(3.0) * 0.1, RATE)
    assert abs(frame_rate_lines(path, hop_length=HOP).median_db) < 3  # the file's own rate is read


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="too short"):
        frame_rate_lines(_noise(0.5), RATE, hop_length=HOP)
    with pytest.raises(InputError, match="too low"):
        frame_rate_lines(_noise(2.0), RATE, hop_length=400)
    with pytest.raises(InputError, match="sample_rate"):
        frame_rate_lines(_noise(2.0), hop_length=HOP)
    with pytest.raises(InputError, match="hop_length"):
        frame_rate_lines(_noise(2.0), RATE, hop_length=0)
