"""vary_real.py: new voices from real speakers' pieces (WORLD pitch and vocal-tract changes), factors drawn
deterministically within the stated ranges and F0 limits, the pieces' texts kept, reruns skipping finished pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from recipes.demo.tests._recipes import load
from recipes.demo.tests.test_world_voices import RATE, f0_of, vowel

vary_real = load("vary_real")
corpus = load("make_corpus")


def test_variants_are_deterministic_alternate_and_stay_in_range() -> None:
    first = vary_real.draw_variant("1234", 0, 180.0, seed=3)
    assert first == vary_real.draw_variant("1234", 0, 180.0, seed=3)
    assert first != vary_real.draw_variant("1234", 0, 180.0, seed=4)
    assert first.speaker == "1234w0" and first.source == "1234"
    up, down = first, vary_real.draw_variant("1234", 1, 180.0, seed=3)
    low_f0, high_f0 = vary_real.F0_FACTORS
    low_warp, high_warp = vary_real.WARP_FACTORS
    assert low_f0 <= up.f0_factor <= high_f0 and low_warp <= up.warp_factor <= high_warp  # even index: up
    assert low_f0 <= 1 / down.f0_factor <= high_f0 and low_warp <= 1 / down.warp_factor <= high_warp  # odd: down
    assert down.target_median_f0_hz == pytest.approx(180.0 * down.f0_factor, abs=0.1)


@pytest.mark.parametrize("median_f0_hz", [85.0, 300.0])
def test_variants_turn_around_at_the_f0_limits(median_f0_hz: float) -> None:
    low, high = vary_real.F0_LIMITS_HZ
    for index in range(6):
        variant = vary_real.draw_variant("77", index, median_f0_hz)
        assert low <= variant.target_median_f0_hz <= high, variant
        assert (variant.f0_factor > 1) == (variant.warp_factor > 1)  # pitch and vocal tract move together


def test_median_f0_counts_voiced_frames_only_and_refuses_silence() -> None:
    assert vary_real.median_f0([np.array([0.0, 100.0, 0.0]), np.array([200.0, 300.0])]) == 200.0
    with pytest.raises(ValueError, match="no voiced frame"):
        vary_real.median_f0([np.zeros(5)])


def test_harvest_finds_the_f0_of_a_vowel() -> None:
    features = corpus.world_analyse(vowel(210.0), RATE, f0_method="harvest")
    assert vary_real.median_f0([features.f0]) == pytest.approx(210.0, rel=0.03)
    with pytest.raises(ValueError, match="f0_method"):
        corpus.world_analyse(vowel(210.0), RATE, f0_method="yin")


def test_a_speaker_becomes_new_voices_with_its_texts_and_reruns_skip(tmp_path: Path) -> None:
    speaker = tmp_path / "real" / "19"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "19-1-0000-00.wav", vowel(150.0).astype(np.float32), RATE, subtype="PCM_16")
    (speaker / "19-1-0000-00.txt").write_text("a long vowel\n")
    (speaker / "19-1-0000-01.wav").write_bytes(b"")  # audio without text: not a piece

    out = tmp_path / "var"
    made = vary_real.vary_speaker(speaker, out, variants=2)
    assert [variant.speaker for variant in made] == ["19w0", "19w1"]
    for variant in made:
        folder = out / variant.speaker
        assert sorted(path.name for path in folder.iterdir()) == ["19-1-0000-00.txt", "19-1-0000-00.wav"]
        assert (folder / "19-1-0000-00.txt").read_text() == "a long vowel\n"
        audio, rate = soundfile.read(folder / "19-1-0000-00.wav")
        assert rate == RATE and len(audio) == RATE and np.abs(audio).max() <= 1.0
        assert f0_of(audio) == pytest.approx(150.0 * variant.f0_factor, rel=0.04)

    before = (out / "19w0" / "19-1-0000-00.wav").stat().st_mtime_ns
    assert vary_real.vary_speaker(speaker, out, variants=2) == made  # the same factors again
    assert (out / "19w0" / "19-1-0000-00.wav").stat().st_mtime_ns == before  # and nothing rewritten


def test_main_writes_the_voice_table_and_refuses_an_empty_corpus(tmp_path: Path) -> None:
    speaker = tmp_path / "real" / "19"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "19-1-0000-00.wav", vowel(150.0).astype(np.float32), RATE, subtype="PCM_16")
    (speaker / "19-1-0000-00.txt").write_text("a long vowel\n")
    assert vary_real.main([str(tmp_path / "real"), "--out", str(tmp_path / "var"), "--variants", "1"]) == 0
    table = json.loads((tmp_path / "var" / "voices.json").read_text())
    assert [row["speaker"] for row in table] == ["19w0"] and table[0]["f0_factor"] > 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no speaker folders"):
        vary_real.main([str(tmp_path / "empty"), "--out", str(tmp_path / "var2")])
    with pytest.raises(SystemExit, match="--variants"):
        vary_real.main([str(tmp_path / "real"), "--out", str(tmp_path / "var3"), "--variants", "0"])
