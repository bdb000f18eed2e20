"""measure_speakers.py's summaries on made-up centroids (no encoder): the distinct-voice cover and the training
pairs over the threshold."""

from __future__ import annotations

import numpy as np
import pytest

from recipes.demo.tests._recipes import load

measure = load("measure_speakers")


def _matrix(size: int, pairs: dict[tuple[int, int], float], base: float = 0.5) -> np.ndarray:
    cosines = np.full((size, size), base)
    np.fill_diagonal(cosines, 1.0)
    for (first, second), cosine in pairs.items():
        cosines[first, second] = cosines[second, first] = cosine
    return cosines


def test_cover_keeps_everyone_when_no_pair_reaches_the_threshold() -> None:
    assert measure.distinct_cover(_matrix(4, {(0, 1): 0.79}), 0.80) == [0, 1, 2, 3]


def test_cover_drops_the_hub_of_a_star_not_its_leaves() -> None:
    # speaker 2 is close to 0, 1 and 3, which are not close to each other: dropping 2 alone clears every pair
    cosines = _matrix(5, {(2, 0): 0.85, (2, 1): 0.81, (2, 3): 0.90})
    assert measure.distinct_cover(cosines, 0.80) == [0, 1, 3, 4]


def test_cover_of_a_pair_drops_one_of_the_two_and_leaves_no_pair_over() -> None:
    cosines = _matrix(6, {(0, 1): 0.82, (3, 4): 0.80, (4, 5): 0.83})
    kept = measure.distinct_cover(cosines, 0.80)
    assert kept == [0, 2, 3, 5]  # 1 (tie with 0: the later row) and 4 (in two pairs) dropped
    sub = cosines[np.ix_(kept, kept)]
    assert (sub[~np.eye(len(kept), dtype=bool)] < 0.80).all()


def test_cover_refuses_a_matrix_that_is_not_square() -> None:
    with pytest.raises(ValueError, match="square"):
        measure.distinct_cover(np.zeros((2, 3)), 0.8)


def test_training_pairs_reports_the_cover_and_ignores_held_out_speakers(capsys: pytest.CaptureFixture[str]) -> None:
    vectors = np.array([[1.0, 0.0], [0.9, np.sqrt(1 - 0.81)], [0.0, 1.0], [1.0, 0.0]])
    speakers = measure.Centroids(["a", "b", "c", "held"], vectors, [1.0] * 4, ["train", "train", "train", "eval"])
    report = measure.training_pairs(speakers, 0.80)
    assert report["training_speakers"] == 3
    assert report["distinct_training_speakers"] == 2
    assert report["dropped_for_distinctness"] == ["b"]
    assert [pair[:2] for pair in report["pairs_at_or_over_threshold"]] == [["a", "b"]]
    printed = capsys.readouterr().out
    assert "distinct training voices (greedy cover, every pair below 0.8): 2 of 3; dropped: b" in printed
