"""Summary statistics for per-item metric values."""

from __future__ import annotations

import math
from collections.abc import Iterable
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
