"""The study report's statistics: the t distribution, Student-t intervals and Welch's test against scipy and hand
values, and the report's statistics section (pairs within a regime only, a sentence when seeds do not separate)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from gan.study import stats
from gan.study.report import METRICS, RunSummary, statistics_section, summary_table


@pytest.mark.parametrize("df", [1, 1.5, 2, 3, 4.7, 10, 30, 200])
def test_t_distribution_matches_scipy(df):
    for q in (0.5, 0.6, 0.9, 0.975, 0.995, 0.9999, 0.025):
        assert stats.t_ppf(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-9, abs=1e-12)
    for t in (-7.0, -1.3, 0.0, 0.4, 2.2, 15.0):
        assert stats.t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), rel=1e-10, abs=1e-14)


def test_t_quantiles_by_hand():
    assert stats.t_ppf(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-10)  # Cauchy: tan(pi (q - 1/2))
    q = 0.975  # df = 2 has a closed form: (2q - 1) / sqrt(2 q (1 - q))
    assert stats.t_ppf(q, 2) == pytest.approx((2 * q - 1) / math.sqrt(2 * q * (1 - q)), rel=1e-10)
    assert stats.t_ppf(0.975, 1e4) == pytest.approx(1.959963984540054, abs=3e-4)  # near the normal's 97.5 % point
    with pytest.raises(ValueError):
        stats.t_ppf(1.0, 3)


@pytest.mark.parametrize("a, b", [
    ([132.0, 118.0, 146.5], [124.3, 110.0, 139.0]),  # overlapping seeds: not separated
    ([149.4, 149.3], [115.9, 110.8, 120.9]),  # very unequal spreads and sizes
    ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),
])
def test_welch_matches_scipy(a, b):
    ours = stats.welch(a, b)
    ref = scipy_stats.ttest_ind(a, b, equal_var=False)
    interval = ref.confidence_interval(0.95)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.t == pytest.approx(ref.statistic, rel=1e-12) and ours.df == pytest.approx(ref.df, rel=1e-12)
    assert (ours.low, ours.high) == (pytest.approx(interval.low, rel=1e-9), pytest.approx(interval.high, rel=1e-9))


def test_welch_by_hand():
    test = stats.welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])  # variances 1 and 1: se^2 = 2/3, df = 4 exactly
    assert test.diff == -3 and test.df == pytest.approx(4) and test.t == pytest.approx(-3 / math.sqrt(2 / 3))
    assert stats.welch([1.0], [2.0, 3.0]) is None and stats.welch([1.0, 1.0], [2.0, 2.0]) is None


def test_mean_interval_is_student_t():
    values = [132.0, 118.0, 146.5]
    s = stats.summarize(values)
    low, high = scipy_stats.t.interval(0.95, len(values) - 1, loc=statistics.mean(values),
                                       scale=scipy_stats.sem(values))
    assert s.std == pytest.approx(statistics.stdev(values)) and (s.low, s.high) == (pytest.approx(low),
                                                                                      pytest.approx(high))
    assert stats.summarize([5.0]).std is None


def test_seeds_needed_is_the_smallest_n_reaching_p_005():
    a, b = [132.0, 118.0, 146.5], [124.3, 110.0, 139.0]
    n = stats.seeds_needed(a, b)

    def p_at(k: int) -> float:
        return scipy_stats.ttest_ind_from_stats(statistics.mean(a), statistics.stdev(a), k, statistics.mean(b),
                                                statistics.stdev(b), k, equal_var=False).pvalue

    assert n is not None and p_at(n) < 0.05 <= p_at(n - 1)
    assert stats.seeds_needed([1.0, 2.0], [1.0, 2.0]) is None  # no difference at all


def _runs(regime, variant, finals, intra=None):
    return [RunSummary(path=Path(f"{regime}/{variant}-s{i}"), variant=variant, seed=i,
                       regime=regime, g_steps=10, final_fid=f, intra_fid=None if intra is None else intra[i])
            for i, f in enumerate(finals)]


R1 = {"none": [132.0, 118.0, 146.5], "spectral": [124.3, 110.0, 139.0], "bn": [276.0, 270.0, 280.0]}  # final FIDs
R2 = {"none": [120.4, 144.2], "spectral": [150.0, 151.0]}


def _regimes(r2_variants):
    """Groups of regime r1 (three variants) and of the named variants of regime r2, as the report groups them."""
    return {**{f"r1/{v}": _runs("r1", v, finals) for v, finals in R1.items()},
            **{f"r2/{v}": _runs("r2", v, R2[v]) for v in r2_variants}}


def test_statistics_section_compares_within_a_regime_and_explains_what_is_not_separated():
    groups = _regimes(["none"])
    text = "\n".join(statistics_section(groups))
    names = [m.name for m in METRICS]
    assert f"### {names[0]}" in text and f"### {names[1]}" not in text  # only metrics the runs have
    tests = [line for line in text.splitlines() if line.startswith(("| r1 |", "| r2 |")) and " vs " in line]
    assert len(tests) == 3 and all(line.startswith("| r1 |") for line in tests)  # r2 has one variant: no pairs
    sentences = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(sentences) == 1 and "none vs spectral (r1)" in sentences[0]  # bn is clearly separated from both
    need = stats.seeds_needed(R1["none"], R1["spectral"], level=1 - 0.05 / 3)  # 3 pairs in r1
    assert f"about {need} seeds per variant" in sentences[0] and "p = 0.546" in sentences[0]


def test_best_fid_compares_within_a_regime_when_regimes_score_different_steps():
    groups = _regimes(["none", "spectral"])
    for label, runs in groups.items():  # r1 scores its curve at 800 and 1600, r2 at 500 and 1000
        steps = (800, 1600) if label.startswith("r1/") else (500, 1000)
        for run in runs:
            run.curve = {steps[0]: run.final_fid + 20, steps[1]: run.final_fid + 10}
    best = next(m.name for m in METRICS if "best" in m.name)
    text = "\n".join(statistics_section(groups))
    assert f"| r1 | {best} | none vs spectral |" in text and f"| r2 | {best} | none vs spectral |" in text
    assert f"| r2 | none | 2 | {statistics.mean(R2['none']) + 10:.1f} |" in text.split(f"### {best}")[1]
    summary = summary_table(groups)
    assert "| r2 | none | 2 | 10 | 132.3 ± 16.8 | 142.3 ± 16.8 |" in summary


def test_intra_fid_is_one_more_metric():
    groups = {"a": _runs(None, "a", [100.0, 110.0], intra=[150.0, 160.0]),
              "b": _runs(None, "b", [120.0, 125.0], intra=[170.0, 175.0])}
    text = "\n".join(statistics_section(groups))
    intra = next(m.name for m in METRICS if "intra" in m.name)
    assert f"### {intra}" in text and f"| {intra} | a vs b |" in text
    assert "| a | 2 | 155.0 |" in text  # mean of the per-run class means


def test_precision_and_recall_from_the_final_evaluation_are_reported_with_three_decimals(tmp_path):
    groups = {}
    for variant, precisions in (("a", [0.080, 0.145]), ("b", [0.300, 0.320])):
        runs = _runs(None, variant, [150.0, 140.0])
        for run, p in zip(runs, precisions):
            run.final_metrics = {"fid": run.final_fid, "precision": p, "recall": p / 10}
        groups[variant] = runs
    text = "\n".join(statistics_section(groups))
    assert "### precision" in text and "### recall" in text
    assert "| a | 2 | 0.112 | 0.046 |" in text  # mean 0.1125 (rounded half to even) and n-1 std of 0.080, 0.145
    assert "| precision | a vs b | -0.198 |" in text  # 0.1125 - 0.31


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept non-decreasing: 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0] and stats.holm([0.02]) == [0.02] and stats.holm([]) == []


def test_a_pair_separated_only_before_holms_correction_gets_a_sentence():
    a, b, c = [10.0, 11.0, 12.0], [12.5, 13.5, 14.5], [13.0, 14.0, 15.0]
    raw = stats.welch(a, b).p
    assert 0.01 < raw < 0.05  # separated alone; not once a vs c (p 0.02) and b vs c (p 0.6) are counted too
    groups = {"r/a": _runs("r", "a", a), "r/b": _runs("r", "b", b), "r/c": _runs("r", "c", c)}
    text = "\n".join(statistics_section(groups))
    row = next(line for line in text.splitlines() if "| a vs b |" in line)
    adjusted = stats.holm([raw, stats.welch(a, c).p, stats.welch(b, c).p])[0]
    assert row.endswith(f"| {raw:.3f} | {adjusted:.3f} |") and adjusted >= 0.05
    sentence = next(line for line in text.splitlines() if line.startswith("- ") and "a vs b (r)" in line)
    assert f"p = {raw:.3f}, Holm-adjusted over 3 pairs {adjusted:.3f}" in sentence
    need = stats.seeds_needed(a, b, level=1 - 0.05 / 3)  # Bonferroni's bar: Holm's worst case over 3 pairs
    assert need > 3 and f"about {need} seeds per variant would be needed for p < 0.05 after the correction" in sentence


def test_headline_table_marks_each_regimes_best_and_gives_holm_p_against_it():
    from gan.study.report import headline_table

    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line
            for line in headline_table(_regimes(["none", "spectral"])).splitlines() if line.startswith("| r")}
    assert "| **124.4 ± 14.5** |" in rows["r1", "spectral"] and "| best |" in rows["r1", "spectral"]
    assert "| **132.3 ± 16.8** |" in rows["r2", "none"] and "| best |" in rows["r2", "none"]  # each regime its own
    values = list(R1.values())
    holm = stats.holm([stats.welch(values[i], values[j]).p for i, j in ((0, 1), (0, 2), (1, 2))])
    bn = "< 0.001" if holm[2] < 0.001 else f"{holm[2]:.3f}"
    assert rows["r1", "none"].endswith(f"| {holm[0]:.3f} |") and rows["r1", "bn"].endswith(f"| {bn} |")
    assert rows["r2", "spectral"].endswith(f"| {stats.welch(R2['none'], R2['spectral']).p:.3f} |")  # one pair
    low, high = stats.summarize(values[0]).low, stats.summarize(values[0]).high
    assert f"| {low:.1f} to {high:.1f} |" in rows["r1", "none"]
