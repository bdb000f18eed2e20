"""Summary statistics for per-item metric values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MeanInterval:
    """Mean of ``n`` values with a two-sided confidence interval (None bounds when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean


def mean_confidence_interval(values: Iterable[float | None], confidence: float = 0.95) -> MeanInterval | None:
    """Mean and Student-t confidence interval of the finite values (None and NaN are skipped).

    Returns None when there is no value. With one value the interval is undefined (bounds None). The
    interval is ``mean ± t(1 - (1 - confidence) / 2, n - 1) * s / sqrt(n)`` with the sample standard deviation.
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None
    n = len(finite)
    mean = sum(finite) / n
    if n < 2:
        return MeanInterval(mean, None, None, n, confidence)
    from scipy.stats import t as student_t

    deviation = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    half = float(student_t.ppf(1 - (1 - confidence) / 2, n - 1)) * deviation / math.sqrt(n)
    return MeanInterval(mean, mean - half, mean + half, n, confidence)


@dataclass(frozen=True)
class PairedDifference:
    """``B - A`` of a pooled ratio measured on the same items by two systems, with a bootstrap interval.

    ``better`` and ``worse`` count the items where B's numerator is above or below A's (ties are the rest)."""

    difference: float
    low: float
    high: float
    n: int
    better: int
    worse: int
    confidence: float = 0.95


def paired_ratio_difference(
    numerators_a: Sequence[float],
    numerators_b: Sequence[float],
    denominators: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """Difference of two pooled ratios over the same items, ``sum(b) / sum(d) - sum(a) / sum(d)``, with a
    percentile bootstrap interval that resamples items (both systems' values of an item travel together, so
    how hard an item is cancels out of the difference).

    The pooled ratio is what "words heard right" is: words recognised over reference words, summed over items.
    Deterministic for a given ``seed``. Raises ValueError when the sequences differ in length, there are no
    items, or the denominators sum to zero."""
    import numpy as np

    if not len(numerators_a) == len(numerators_b) == len(denominators):
        raise ValueError(
            f"paired items must line up: {len(numerators_a)} values of A, {len(numerators_b)} of B, "
            f"{len(denominators)} denominators"
        )
    if not denominators:
        raise ValueError("no paired items")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    values_a = np.asarray(numerators_a, dtype=np.float64)
    values_b = np.asarray(numerators_b, dtype=np.float64)
    totals = np.asarray(denominators, dtype=np.float64)
    if totals.sum() <= 0:
        raise ValueError("the denominators sum to zero: nothing to pool")
    difference = float((values_b.sum() - values_a.sum()) / totals.sum())
    picks = np.random.default_rng(seed).integers(0, len(totals), size=(resamples, len(totals)))
    picked_totals = totals[picks].sum(axis=1)
    valid = picked_totals > 0
    spread = (values_b[picks].sum(axis=1) - values_a[picks].sum(axis=1))[valid] / picked_totals[valid]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(spread, [tail, 1.0 - tail])
    return PairedDifference(
        difference=difference,
        low=float(low),
        high=float(high),
        n=len(totals),
        better=int((values_b > values_a).sum()),
        worse=int((values_b < values_a).sum()),
        confidence=confidence,
    )
