"""Runs grouped by variant: mean +- std over seeds of final / best FID, speed, D's separation, gradient and spectral
norms, as a markdown report with a FID-vs-step plot (a band per variant) and a per-layer spectral-norm plot; and
for each metric of :data:`METRICS`, 95 % confidence intervals over seeds and Welch's t-test between every two
variants of a regime (:mod:`gan.study.stats`), with a sentence when the seeds are too few to separate them.

A run's regime and variant are what ``gan study`` recorded in ``<run>/study.json``; other runs are grouped by their
config's normalization (``norm`` plus any ``convnorm`` options).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from gan.runs.layout import (
    GRADIENT_LOG,
    SPECTRAL_LOG,
    curve_results,
    describe_protocol,
    final_result,
    logged_rows,
    model_config,
    read_jsonl,
    study_marker,
)
from gan.study import stats
from gan.utils.markdown import markdown_table
from gan.utils.plots import png_figure

# "D discriminates": mean D(real) - D(fake) at least this. With the hinge loss, loss/d is 2.0 when D is undecided and
# about 2 - gap while D's outputs stay within [-1, 1]; a spectrally normalised D keeps small outputs, so the bar is low.
SEPARATION = 0.2


@dataclass
class RunSummary:
    path: Path
    variant: str
    seed: int | None
    g_steps: int = 0
    regime: str | None = None
    final_fid: float | None = None
    intra_fid: float | None = None  # mean over classes of the final evaluation's intra-class FID, when it has one
    final_metrics: dict[str, float] = field(default_factory=dict)  # the final evaluation's numeric metrics
    final_protocol: str = "-"
    curve: dict[int, float] = field(default_factory=dict)  # g_step -> FID (the curve protocol)
    curve_protocol: str = "-"
    speed: float | None = None  # median logged G-steps/s
    separates_at: int | None = None  # first logged G step with D(real) - D(fake) >= SEPARATION
    stuck: float | None = None  # fraction of logged steps after 200 with |D(real) - D(fake)| < 0.05
    grads: dict[str, float] = field(default_factory=dict)  # last gradient_norms.jsonl row
    spectral: dict[str, float] = field(default_factory=dict)  # last spectral_norms.jsonl row

    def best_fid(self, steps: set[int] | None = None) -> float | None:
        """Lowest curve FID, over ``steps`` only when given (the steps every run of a comparison has)."""
        values = [v for s, v in self.curve.items() if math.isfinite(v) and (steps is None or s in steps)]
        return min(values) if values else None


def _variant(path: Path) -> tuple[str, int | None, str | None]:
    """(variant, seed, regime) of a run folder."""
    info = study_marker(path)
    if info is not None:
        return info["variant"], info.get("seed"), info.get("regime")
    model = model_config(path)
    options = model.get("convnorm") or {}
    suffix = "".join(f" {k}={v}" for k, v in sorted(options.items())) if str(model.get("norm", "")).startswith(
        "convnorm") else ""
    return f"{model.get('norm', '?')}{suffix}", None, None


def _last_row(path: Path) -> dict[str, float]:
    rows = read_jsonl(path)
    return {k: v for k, v in rows[-1].items() if k != "g_step"} if rows else {}


def summarize_run(path: Path) -> RunSummary:
    """Everything the report needs from one run folder (missing pieces stay None / empty)."""
    variant, seed, regime = _variant(path)
    run = RunSummary(path, variant, seed, regime=regime)
    rows = logged_rows(path)
    logged = [(s, r) for s, r in sorted(rows.items()) if "d/real" in r and "d/fake" in r]
    run.g_steps = max(rows, default=0)
    speeds = [float(r["speed/g_steps_per_s"]) for _, r in logged if "speed/g_steps_per_s" in r]
    run.speed = statistics.median(speeds) if speeds else None
    gaps = [(s, float(r["d/real"]) - float(r["d/fake"])) for s, r in logged]
    run.separates_at = next((s for s, gap in gaps if gap >= SEPARATION), None)
    late = [abs(gap) < 0.05 for s, gap in gaps if s > 200]
    run.stuck = sum(late) / len(late) if late else None
    for entry in curve_results(path):
        if "fid" in entry["metrics"]:
            run.curve[int(entry["g_step"])] = float(entry["metrics"]["fid"])
            run.curve_protocol = describe_protocol(entry)
    entry = final_result(path)
    if entry is not None:
        run.final_metrics = {k: float(v) for k, v in entry["metrics"].items()}
        run.final_fid, run.final_protocol = run.final_metrics.get("fid"), describe_protocol(entry)
        run.intra_fid = run.final_metrics.get("intra_fid")
    run.grads = _last_row(path / GRADIENT_LOG)
    run.spectral = _last_row(path / SPECTRAL_LOG)
    return run


def group(runs: list[RunSummary]) -> dict[str, list[RunSummary]]:
    """Runs by ``<regime>/<variant>`` (just the variant for runs without a regime), in first-seen order."""
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(run.variant if run.regime is None else f"{run.regime}/{run.variant}", []).append(run)
    return groups


def _has_regimes(groups: dict[str, list[RunSummary]]) -> bool:
    return any(r.regime is not None for runs in groups.values() for r in runs)


def _label(runs: list[RunSummary], with_regime: bool) -> list[str]:
    """The first cells of a group's row: [regime, variant] when the report has regimes, else [variant]."""
    return [runs[0].regime or "-", runs[0].variant] if with_regime else [runs[0].variant]


def mean_std(values: list[float | None], digits: int = 1) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def common_steps(runs: list[RunSummary]) -> set[int]:
    """The curve steps every run has: best FIDs and bands compare like with like."""
    return set.intersection(*(set(r.curve) for r in runs)) if runs else set()


def by_regime(groups: dict[str, list[RunSummary]]) -> dict[str | None, list[str]]:
    """The groups' labels per regime, both in first-seen order: variants compare only within their regime."""
    labels: dict[str | None, list[str]] = {}
    for label, runs in groups.items():
        labels.setdefault(runs[0].regime, []).append(label)
    return labels


def regime_steps(groups: dict[str, list[RunSummary]]) -> dict[str | None, set[int]]:
    """Per regime, the curve steps every run of it with a curve has. Regimes run different schedules (curves at
    800, 1600, 2000 G steps in one, 500, 1000 in another), so each regime's best FIDs compare within it."""
    return {regime: common_steps([r for label in labels for r in groups[label] if r.curve])
            for regime, labels in by_regime(groups).items()}


def percent(text: str) -> str:
    return text if text == "-" else text + " %"


def summary_table(groups: dict[str, list[RunSummary]]) -> str:
    """One row per variant; the best-FID column only when runs have a curve, and a column for each optional metric
    of the final evaluation (intra-class FID, precision, recall) that some run has."""
    everyone = [r for runs in groups.values() for r in runs]
    steps = regime_steps(groups)
    with_curve = any(r.curve for r in everyone)
    optional = final_columns(everyone)
    with_regime = _has_regimes(groups)
    header = [*(["regime"] if with_regime else []), "variant", "seeds", "G steps", "final FID",
              *(["best FID (curve)"] if with_curve else []), *(label for _, label, _ in optional),
              "G-steps/s", "D separates at step", "stuck after 200", "grad norm real / fake", "max layer σ"]
    rows = []
    for runs in groups.values():
        trained = [r for r in runs if r.g_steps > 0]  # a study still running has folders with nothing logged yet
        separations = ["never" if r.separates_at is None else str(r.separates_at) for r in trained]
        separated = "never" if separations and set(separations) == {"never"} else ", ".join(separations) or "-"
        rows.append([
            *_label(runs, with_regime), str(len(trained)), str(max(r.g_steps for r in runs)),
            mean_std([r.final_fid for r in runs]),
            *([mean_std([r.best_fid(steps[runs[0].regime]) for r in runs])] if with_curve else []),
            *(mean_std([r.final_metrics.get(key) for r in runs], digits) for key, _, digits in optional),
            mean_std([r.speed for r in runs], 2), separated,
            percent(mean_std([None if r.stuck is None else 100 * r.stuck for r in runs], 0)),
            f"{mean_std([r.grads.get('grad/real_mean') for r in runs], 2)} / "
            f"{mean_std([r.grads.get('grad/fake_mean') for r in runs], 2)}",
            mean_std([max(r.spectral.values()) if r.spectral else None for r in runs], 2),
        ])
    return markdown_table(header, rows)


FINAL_COLUMNS = (("intra_fid", "intra-class FID", 1), ("precision", "precision", 3), ("recall", "recall", 3))
HEADLINE_EXTRA = ("intra_fid", "precision")  # final-evaluation metrics README's study tables show beside FID


def percent_text(fraction: float) -> str:
    """0.95 -> "95 %", the way every table writes a level."""
    return f"{fraction:.0%}".replace("%", " %")


LEVEL_TEXT = percent_text(stats.LEVEL)  # the confidence level, as every table heads it


def final_columns(runs: list[RunSummary], keys: tuple[str, ...] | None = None) -> list[tuple[str, str, int]]:
    """The :data:`FINAL_COLUMNS` (of ``keys`` only, when given) that some of ``runs`` has."""
    return [(key, label, digits) for key, label, digits in FINAL_COLUMNS
            if (keys is None or key in keys) and any(key in r.final_metrics for r in runs)]


def headline_table(groups: dict[str, list[RunSummary]]) -> str:
    """The table README shows for a study: per variant the final FID's mean ± std, its 95 % interval and Welch's
    p against the regime's best variant (lowest mean), Holm-adjusted over the regime's pairs as in the statistics
    section; then intra-class FID and precision where the runs have them. A caption line states the protocol."""
    final = METRICS[0]
    values = {label: _values(runs, final, set()) for label, runs in groups.items()}
    tested = pair_tests(groups, values)
    with_regime = _has_regimes(groups)
    everyone = [r for runs in groups.values() for r in runs]
    extra = final_columns(everyone, HEADLINE_EXTRA)
    best: dict[str | None, str] = {}
    for regime, labels in by_regime(groups).items():
        scored = [label for label in labels if values[label]]
        testable = [label for label in scored if len(values[label]) >= 2] or scored  # not one lucky seed
        if testable:
            best[regime] = min(testable, key=lambda label: statistics.mean(values[label]))
    rows = []
    for label, runs in groups.items():
        s = stats.summarize(values[label]) if values[label] else None
        cell = "-" if s is None else mean_std(values[label], final.digits)
        interval = "-" if s is None or s.low is None else f"{s.low:.{final.digits}f} to {s.high:.{final.digits}f}"
        top = best.get(runs[0].regime)
        if label == top:
            cell, p = f"**{cell}**", "best"
        else:
            result = tested.get((top, label)) or tested.get((label, top))
            p = "-" if result is None else _p(result[1])
        rows.append([*_label(runs, with_regime), str(len(values[label])), cell, interval, p,
                     *(mean_std([r.final_metrics.get(key) for r in runs], digits) for key, _, digits in extra)])
    header = [*(["regime"] if with_regime else []), "variant", "seeds", "final FID", f"{LEVEL_TEXT} CI",
              "p vs best (Holm)", *(label for _, label, _ in extra)]
    final_protocol, _ = protocols(everyone)
    scope = ("the variant with its regime's lowest mean, Holm-adjusted over the regime's pairs" if with_regime
             else "the variant with the lowest mean, Holm-adjusted over all pairs")
    return (markdown_table(header, rows) + f"\n\n*Final FID: {final_protocol}. Mean ± std over seeds, the {LEVEL_TEXT} "
            f"interval of the mean (Student's t); p: Welch's t-test against {scope} (below {1 - stats.LEVEL:.2f}: the "
            "seeds separate the two; -: no test, which needs 2 or more seeds each).*")


def read_runs(run_dirs: list[Path]) -> list[RunSummary]:
    """The summaries every table of a report is made from, read once per report."""
    return [summarize_run(p) for p in run_dirs]


def study_table(runs: list[RunSummary]) -> str:
    """:func:`headline_table` of these runs: what ``--update-doc`` writes into README."""
    return headline_table(group(runs))


def spectral_table(groups: dict[str, list[RunSummary]]) -> str:
    layers = list(dict.fromkeys(k for runs in groups.values() for r in runs for k in r.spectral))
    with_regime = _has_regimes(groups)
    rows = [[*_label(runs, with_regime), *(mean_std([r.spectral.get(layer) for r in runs], 2) for layer in layers)]
            for runs in groups.values()]
    return markdown_table([*(["regime"] if with_regime else []), "variant", *layers], rows)


@dataclass(frozen=True)
class Metric:
    """A per-run number the statistics section compares; ``value`` gets the run and the curve steps every run
    of its regime has. Adding a metric to the report is adding one entry to :data:`METRICS`."""

    name: str
    value: Callable[[RunSummary, set[int]], float | None]
    digits: int = 1  # decimals shown (precision and recall live in [0, 1])


METRICS = (
    Metric("final FID", lambda run, steps: run.final_fid),
    Metric("best FID (curve)", lambda run, steps: run.best_fid(steps)),
    Metric("intra-class FID (mean over classes)", lambda run, steps: run.intra_fid),
    Metric("precision", lambda run, steps: run.final_metrics.get("precision"), digits=3),
    Metric("recall", lambda run, steps: run.final_metrics.get("recall"), digits=3),
)


def _values(runs: list[RunSummary], metric: Metric, steps: set[int]) -> list[float]:
    values = (metric.value(r, steps) for r in runs)
    return [v for v in values if v is not None and math.isfinite(v)]


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def pair_tests(
    groups: dict[str, list[RunSummary]], values: dict[str, list[float]]
) -> dict[tuple[str, str], tuple[stats.Welch, float] | None]:
    """Welch's test and its Holm-adjusted p for every two groups of one regime that both have values, keyed by the
    groups' labels (None where no test is possible). Holm's family is the tested pairs of one regime."""
    results: dict[tuple[str, str], tuple[stats.Welch, float] | None] = {}
    for labels in by_regime(groups).values():
        family = [(a, b) for a, b in combinations(labels, 2) if values[a] and values[b]]
        welch = {pair: stats.welch(values[pair[0]], values[pair[1]]) for pair in family}
        tested = [pair for pair in family if welch[pair] is not None]
        adjusted = dict(zip(tested, stats.holm([welch[pair].p for pair in tested])))
        results.update({pair: None if welch[pair] is None else (welch[pair], adjusted[pair]) for pair in family})
    return results


def statistics_section(groups: dict[str, list[RunSummary]]) -> list[str]:
    """Markdown lines: per metric, each group's mean, std and 95 % interval; then Welch's test between every two
    variants of a regime, and a sentence for each pair the seeds do not separate (empty when no metric has values)."""
    steps = regime_steps(groups)
    with_regime = _has_regimes(groups)
    alpha = percent_text(1 - stats.LEVEL)
    lines: list[str] = []
    tests: list[list[str]] = []
    notes: list[str] = []
    for metric in METRICS:
        d = metric.digits
        values = {label: _values(runs, metric, steps[runs[0].regime]) for label, runs in groups.items()}
        if not any(values.values()):
            continue
        rows = []
        for label, runs in groups.items():
            if values[label]:
                s = stats.summarize(values[label])
                interval = "-" if s.low is None else f"{s.low:.{d}f} to {s.high:.{d}f}"
                rows.append([*_label(runs, with_regime), str(s.n), _num(s.mean, d), _num(s.std, d), interval])
        lines += [f"### {metric.name}", "", markdown_table(
            [*(["regime"] if with_regime else []), "variant", "n", "mean", "std", f"{LEVEL_TEXT} CI of the mean"],
            rows), ""]
        tested = pair_tests(groups, values)
        sizes = Counter(groups[a][0].regime for (a, _), result in tested.items() if result is not None)
        for (a, b), result in tested.items():
            runs_a, runs_b = groups[a], groups[b]
            where = f" ({runs_a[0].regime})" if with_regime else ""
            pair = f"{runs_a[0].variant} vs {runs_b[0].variant}"
            if result is None:
                notes.append(f"- {metric.name}, {pair}{where}: no test (needs 2 or more seeds each, and some spread).")
                continue
            test, p_holm = result
            va, vb, family = values[a], values[b], sizes[runs_a[0].regime]
            tests.append([*([runs_a[0].regime or "-"] if with_regime else []), metric.name, pair, f"{test.diff:+.{d}f}",
                          f"{test.low:+.{d}f} to {test.high:+.{d}f}", _p(test.p), _p(p_holm)])
            if p_holm < 1 - stats.LEVEL:
                continue
            # Holm's largest multiplier is the family's size (Bonferroni's bar): enough seeds to pass it separate
            # the pair whatever the other pairs' p-values are
            need = stats.seeds_needed(va, vb, level=1 - (1 - stats.LEVEL) / family)
            bar = f"p < {1 - stats.LEVEL:.2f}" + (f" after the correction (p < {(1 - stats.LEVEL) / family:.3g} "
                                                   "alone)" if family > 1 else "")
            if need:
                more = f"at the observed spread, about {need} seeds per variant would be needed for {bar}"
            else:
                more = ("the observed difference is negligible against the spread: no practical number of seeds "
                        "would separate them")
            corrected = f", Holm-adjusted over {family} pairs {_p(p_holm)}" if family > 1 else ""
            notes.append(f"- {metric.name}, {pair}{where}: {len(va)} and {len(vb)} seeds do not separate them "
                         f"(difference {test.diff:+.{d}f}, {LEVEL_TEXT} CI {test.low:+.{d}f} to {test.high:+.{d}f}, "
                         f"p = {_p(test.p)}{corrected}); {more}.")
    if not lines:
        return []
    out = ["## Statistics over seeds", "", *lines]
    if tests:
        out += ["### Differences between variants (Welch's t-test)", "", markdown_table(
            [*(["regime"] if with_regime else []), "metric", "A vs B", "A - B", f"{LEVEL_TEXT} CI of A - B", "p",
             "p (Holm)"],
            tests), ""]
    out += [*notes, *([""] if notes else []),
            f"Mean and sample std (n - 1) over seeds; the {LEVEL_TEXT} interval of the mean is Student's t with n - 1 "
            "degrees of freedom. A - B: Welch's unequal-variance t-test (seeds are independent replicates and the "
            "variants' spreads differ), its interval from the Welch-Satterthwaite degrees of freedom (unadjusted). "
            "p (Holm): adjusted by Holm's step-down method over the pairs of one regime and metric, so that all of "
            f"them together separate a pair by chance less than {alpha} of the time; a pair counts as "
            "separated when this one is below that level. Seeds needed: "
            "the smallest n per variant at which the observed difference and standard deviations would give p < "
            f"{1 - stats.LEVEL:.2f} (no power allowance: a new study of that size separates them about half the "
            "time).", ""]
    return out


def protocols(runs: list[RunSummary]) -> tuple[str, str]:
    finals = sorted({r.final_protocol for r in runs if r.final_protocol != "-"})
    curves = sorted({r.curve_protocol for r in runs if r.curve_protocol != "-"})
    return "; ".join(finals) or "-", "; ".join(curves) or "-"


def plot_fid_bands(groups: dict[str, list[RunSummary]], out: Path, title: str = "") -> Path:
    """Mean FID against G step per variant, with a band from the lowest to the highest seed."""
    with png_figure(out) as ax:
        for variant, runs in groups.items():  # (the group's label: <regime>/<variant> in a grid with regimes)
            steps = sorted(common_steps(runs))
            if not steps:
                continue
            values = [[r.curve[s] for r in runs] for s in steps]
            mean = [statistics.mean(v) for v in values]
            line, = ax.plot(steps, mean, marker="o", ms=3, label=f"{variant} (n={len(runs)})")
            ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color=line.get_color(),
                            alpha=0.15)
        ax.set(xlabel="generator step", ylabel="FID (lower is better)")
        ax.set_title(title or "FID vs generator step: mean over seeds, band = min..max", fontsize=9)
    return out


def plot_spectral(groups: dict[str, list[RunSummary]], out: Path) -> Path:
    """Final exact spectral norm of each D layer per variant (mean over seeds, bars = min..max)."""
    layers = list(dict.fromkeys(k for runs in groups.values() for r in runs for k in r.spectral))
    with png_figure(out) as ax:
        for variant, runs in groups.items():
            xs, mean, low, high = [], [], [], []
            for i, layer in enumerate(layers):
                values = [r.spectral[layer] for r in runs if layer in r.spectral]
                if values:
                    xs.append(i)
                    mean.append(statistics.mean(values))
                    low.append(mean[-1] - min(values))
                    high.append(max(values) - mean[-1])
            if xs:
                ax.errorbar(xs, mean, yerr=[low, high], marker="o", ms=3, capsize=2, label=variant)
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=7)
        ax.set(ylabel="spectral norm (exact, circular)", yscale="log", title="D's layers at the end of training")
    return out


def write_report(runs: list[RunSummary], out_dir: Path, title: str) -> str:
    """``report.md`` of ``runs`` (:func:`read_runs`) in ``out_dir``, with ``fid_vs_step.png`` and
    ``spectral_norms.png`` where the runs logged a FID curve and spectral norms (a grid without them gets no empty
    plot or table); returns the markdown."""
    groups = group(runs)
    final_protocol, curve_protocol = protocols(runs)
    has_curve = any(common_steps(variant_runs) for variant_runs in groups.values())
    has_spectral = any(r.spectral for r in runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {title}", "",
        "## Final FID", "", headline_table(groups), "",
        "## Runs", "",
        summary_table(groups), "",
        f"final FID (and the final evaluation's other metrics): {final_protocol}. "
        + (f"best FID: lowest point of the curve ({curve_protocol}). " if curve_protocol != "-" else "") +
        f"Mean ± std over seeds. D separates: first logged G step with mean D(real) - D(fake) >= {SEPARATION}; "
        "stuck: share of logged steps after 200 with |D(real) - D(fake)| < 0.05. Gradient norms: "
        "||grad_x D(x)|| at the last measurement (mean over images). max layer σ: largest final per-layer "
        "spectral norm of D.", "",
    ]
    lines += statistics_section(groups)
    if has_spectral:
        lines += ["## Final per-layer spectral norms of D", "", spectral_table(groups), ""]
    if has_curve:
        plot = plot_fid_bands(groups, out_dir / "fid_vs_step.png", f"{title}: FID vs G step ({curve_protocol})")
        lines += [f"![FID vs G step]({plot.name})", ""]
    if has_spectral:
        lines += [f"![spectral norms]({plot_spectral(groups, out_dir / 'spectral_norms.png').name})", ""]
    text = "\n".join(lines)
    (out_dir / "report.md").write_text(text)
    return text
