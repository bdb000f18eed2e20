"""search_voices.py's parts: candidate draws, what a voice sounds like, and the greedy choice (gain, threshold,
the pocketsphinx veto) on made-up centroids; the refusals of its command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recipes.demo.tests._recipes import load

search = load("search_voices")


def test_draws_are_seeded_and_stay_in_range() -> None:
    first = search.draw_candidates("flite-rms", 110.0, 50, np.random.default_rng(3))
    again = search.draw_candidates("flite-rms", 110.0, 50, np.random.default_rng(3))
    assert first == again
    for candidate in first:
        assert 0.82 <= candidate.warp <= 1.35
        assert candidate.tilt_db == 0 or 2.5 <= abs(candidate.tilt_db) <= 6.0
        assert 74 <= candidate.median_f0_hz <= 322  # the F0 factor is rounded to hundredths
    assert any(candidate.tilt_db == 0 for candidate in first) and any(candidate.tilt_db for candidate in first)
    assert first[0].id.startswith("flite-rms-f")


@pytest.mark.parametrize(
    ("base", "f0", "warp", "tilt", "expected"),
    [
        ("flite-rms", 90.0, 0.9, 0.0, "deep male"),
        ("flite-rms", 130.0, 1.0, 3.0, "male, bright"),
        ("flite-slt", 200.0, 1.0, -4.0, "female, dark"),  # a woman's tract: 1.17 x 1.0
        ("flite-awb", 260.0, 1.3, 0.0, "child-like"),
        ("flite-awb", 250.0, 0.9, 0.0, "androgynous"),
    ],
)
def test_character_follows_pitch_and_tract(base: str, f0: float, warp: float, tilt: float, expected: str) -> None:
    assert search.Candidate(base, 1.0, warp, tilt, f0).character() == expected


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=float)
    return vector / np.linalg.norm(vector)


def test_greedy_keeps_the_largest_gain_then_drops_its_near_copies_and_respects_the_veto() -> None:
    real = np.stack([_unit(1, 0, 0), _unit(0, 1, 0)])
    candidates = np.stack(
        [
            _unit(1, 0.05, 0),  # near real 0: the largest gain
            _unit(1, 0.1, 0),  # a near copy of candidate 0: leaves the pool once 0 is kept
            _unit(0.1, 1, 0),  # near real 1, but pocketsphinx refuses it
            _unit(0.3, 1, 0.2),  # near real 1, less so: kept after the veto
            _unit(0, 0, 1),  # near nobody: no gain
        ]
    )
    nearest = np.array([0.5, 0.5])
    checked: list[int] = []

    def accept(index: int) -> bool:
        checked.append(index)
        return index != 2

    kept = search.greedy_select(
        candidates, np.ones(5, bool), real, nearest, np.ones(2), lambda index: 0.2, accept, 0.9, 10
    )
    assert [index for index, _ in kept] == [0, 3]
    assert checked == [0, 2, 3]
    assert kept[0][1] == pytest.approx(candidates[0] @ real[0] - 0.5)
    # an ineligible candidate (at or above the threshold to an existing voice) is never considered
    eligible = np.array([False, True, True, True, True])
    kept = search.greedy_select(candidates, eligible, real, nearest, np.ones(2), lambda index: 0.2, accept, 0.9, 1)
    assert [index for index, _ in kept] == [1]


def test_real_voices_served_by_badly_heard_voices_weigh_more() -> None:
    real = np.stack([_unit(1, 0), _unit(0, 1)])
    gain_for_0 = search.real_gain(_unit(1, 0.2), real, np.array([0.5, 0.5]), np.array([1.0, 0.1]))
    gain_for_1 = search.real_gain(_unit(0.2, 1), real, np.array([0.5, 0.5]), np.array([1.0, 0.1]))
    assert gain_for_0 > 5 * gain_for_1


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "o.json")]
    with pytest.raises(SystemExit, match="expected some of"):
        search.main(["--against", str(tmp_path), "--real", str(tmp_path), "--bases", "espeak-andy", *out])
    with pytest.raises(SystemExit, match="quality benchmark's voices"):
        (tmp_path / "test-other").mkdir()
        search.main(["--against", str(tmp_path), "--real", str(tmp_path / "test-other"), *out])
    with pytest.raises(SystemExit, match="is not a folder"):
        search.main(["--against", str(tmp_path / "missing"), "--real", str(tmp_path), *out])
    assert not (tmp_path / "o.json").exists()
