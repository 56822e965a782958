"""Small-sample statistics for printed figures: binomial intervals and bounds (torch-free, exact where cheap)."""

from __future__ import annotations

import math

Z95 = 1.959964


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def binomial_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact (Clopper-Pearson) upper bound of a proportion after k successes in n trials."""
    if n <= 0 or k >= n:
        return 1.0
    lo, hi = k / n, 1.0
    for _ in range(60):  # bisection: the cdf falls as p rises
        mid = (lo + hi) / 2
        if _binomial_cdf(k, n, mid) > 1 - confidence:
            lo = mid
        else:
            hi = mid
    return hi


def paired_drop_upper(lost: int, gained: int, n: int, confidence: float = 0.95) -> float:
    """Upper bound (points) of the accuracy drop from paired answers: `lost` right->wrong, `gained` wrong->right.

    Exact McNemar-style, given the d = lost + gained images whose answer changed: the share q of them that were
    lost has an exact upper bound, and the drop (lost - gained) / n is at most (2q - 1) * d / n. No changed
    answer gives 0: whether n images can show a drop at all is the sample-size check's question.
    """
    if n <= 0:
        return 100.0
    changed = lost + gained
    if changed == 0:
        return 0.0
    q = binomial_upper(lost, changed, confidence)
    return 100.0 * max(0.0, (2 * q - 1) * changed / n)
