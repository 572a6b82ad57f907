"""What a gap between variants means with a handful of seeds: means with Student-t confidence intervals, and
Welch's t-test between two variants.

Why Welch's test: seeds are independent replicates of each variant, the groups are small (2-5 seeds) and their
spreads differ a lot between variants (e.g. FID std 0.1 against 16.9), so the unequal-variance t-test is the
standard choice; it does not pool the variances as Student's test does. The t distribution is computed here from
the regularized incomplete beta function (a continued fraction) so that the report needs nothing beyond the
standard library; tests check it against scipy.

Why Holm's correction: a report tests every pair of a regime's variants (15 pairs for 6 variants), and at p < 0.05
each a true null still comes out "separated" about once in 20 tests. Holm's step-down adjustment keeps the chance
of any false separation within a (regime, metric) family under 5 % whatever the tests' dependence (they share
groups), and is uniformly more powerful than Bonferroni's.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

LEVEL = 0.95  # confidence level of every interval; p < 1 - LEVEL "separates" two variants
MAX_SEEDS = 1000  # seeds_needed gives up beyond this (the gap is then negligible against the spread)


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz's method), converging fast for x < (a + 1) / (a + b + 2)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return result


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b  # the symmetry I_x(a, b) = 1 - I_1-x(b, a)


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| >= |t|) of Student's t with ``df`` (real) degrees of freedom."""
    return betainc(df / 2, 0.5, df / (df + t * t))


def t_cdf(t: float, df: float) -> float:
    tail = t_sf2(t, df) / 2
    return 1 - tail if t > 0 else tail


def t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t by bisection on the CDF (relative error < 1e-9 for df up to 1e3; seeds give
    far fewer)."""
    if not 0 < q < 1:
        raise ValueError(f"quantile {q} must be in (0, 1)")
    if q < 0.5:
        return -t_ppf(1 - q, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < q:
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if t_cdf(mid, df) < q else (low, mid)
    return (low + high) / 2


@dataclass
class Summary:
    """Mean, sample standard deviation (n - 1) and the Student-t confidence interval of the mean."""

    n: int
    mean: float
    std: float | None  # None for one value
    low: float | None
    high: float | None


def summarize(values: list[float], level: float = LEVEL) -> Summary:
    n, mean = len(values), statistics.mean(values)
    if n < 2:
        return Summary(n, mean, None, None, None)
    std = statistics.stdev(values)
    half = t_ppf((1 + level) / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass
class Welch:
    """Welch's t-test of mean(a) - mean(b): the difference, its confidence interval, t, degrees of freedom, p."""

    diff: float
    low: float
    high: float
    t: float
    df: float
    p: float


def welch(a: list[float], b: list[float], level: float = LEVEL) -> Welch | None:
    """None when a group has fewer than 2 values or neither has any spread (no test is possible)."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return None
    diff = statistics.mean(a) - statistics.mean(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    half = t_ppf((1 + level) / 2, df) * se
    return Welch(diff, diff - half, diff + half, diff / se, df, t_sf2(diff / se, df))


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: the i-th smallest p times (m - i + 1), made non-decreasing in that
    order and capped at 1. A pair is separated at family-wise level alpha when its adjusted p < alpha."""
    m = len(pvalues)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def seeds_needed(a: list[float], b: list[float], level: float = LEVEL) -> int | None:
    """Seeds per variant at which the observed difference would reach p < 1 - level if the means and standard
    deviations stayed as observed (no power allowance: a new study of that size has about even odds); None when
    there is no difference or it would take more than MAX_SEEDS."""
    diff = abs(statistics.mean(a) - statistics.mean(b))
    va, vb = statistics.variance(a), statistics.variance(b)
    if diff == 0:
        return None
    if va + vb == 0:
        return 2
    for n in range(2, MAX_SEEDS + 1):
        df = (n - 1) * (va + vb) ** 2 / (va**2 + vb**2)  # Welch-Satterthwaite with n seeds each
        if diff / math.sqrt((va + vb) / n) >= t_ppf((1 + level) / 2, df):
            return n
    return None
