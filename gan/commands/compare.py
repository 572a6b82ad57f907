"""``gan compare RUN_DIR...``: the normalizations side by side, a markdown table and an FID-vs-G-step plot.

FID / IS per G step come from the FID callback (``fidelity.jsonl``, ``eval/*`` columns of metrics.csv) or,
for runs trained without it, from ``gan eval`` of the run's checkpoints (``ckpt/g*.eval.json``). Intra-class FID,
precision and recall (``gan eval --intra-fid --metrics fid,prc``) get columns of their last values when any run
has them."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

from gan.errors import UserError
from gan.runs.layout import curve_results, describe_protocol, is_run, logged_rows, model_config, runs_below
from gan.utils.files import atomic_write, check_writable_file, explain_write_errors
from gan.utils.markdown import markdown_table
from gan.utils.plots import png_figure


@dataclass
class Run:
    """What a run folder says about itself: config, training progress and its FID / IS curve."""

    path: Path
    norm: str = "?"
    arch: str = "?"
    g_steps: int = 0
    curve: dict[int, dict[str, float]] = field(default_factory=dict)  # g_step -> {"fid": ..., "is_mean": ...}
    # later sources win: metrics.csv, then fidelity.jsonl (or gan eval JSONs), which carry the protocol
    protocol: str = "-"

    def best(self, key: str, lower: bool) -> tuple[float, int] | None:
        points = [(v[key], s) for s, v in self.curve.items() if key in v and math.isfinite(v[key])]
        return (min if lower else max)(points, key=lambda p: p[0]) if points else None

    def final(self, key: str) -> tuple[float, int] | None:
        points = [(v[key], s) for s, v in sorted(self.curve.items()) if key in v]
        return points[-1] if points else None


def read_run(path: Path) -> Run:
    if not path.is_dir():
        kind = "is a file, not a folder" if path.exists() else "does not exist"
        raise UserError(f"run folder {str(path)!r} {kind}; pass folders like checkpoints/<run>")
    if not is_run(path):
        below = runs_below(path)
        if below:
            shown = " ".join(str(p) for p in below[:3]) + (" ..." if len(below) > 3 else "")
            raise UserError(f"{str(path)!r} is a folder of {len(below)} runs, not a run; pass the runs themselves: "
                            f"{shown}")
    model = model_config(path)
    run = Run(path, norm=str(model.get("norm", "?")), arch=str(model.get("arch", "?")))
    rows = logged_rows(path)  # training progress + logged eval/* columns
    run.g_steps = max(rows, default=0)
    for step, row in rows.items():
        for key in ("fid", "is_mean"):
            if row.get(f"eval/{key}"):
                run.curve.setdefault(step, {})[key] = float(row[f"eval/{key}"])
    # the callback's records, with the protocol of each number; else gan eval results of the run's checkpoints
    entries = curve_results(path)
    if not (model or rows or entries):
        raise UserError(f"{str(path)!r} is not a run folder (no config.yaml, logs/metrics.csv, fidelity.jsonl or "
                        "ckpt/*.eval.json); pass folders written by gan fit, like checkpoints/<run>")
    for entry in entries:
        run.curve[int(entry["g_step"])] = entry["metrics"]
        run.g_steps = max(run.g_steps, int(entry["g_step"]))
        run.protocol = describe_protocol(entry)
    return run


def fmt(point: tuple[float, int] | None, with_step: bool = False) -> str:
    if point is None:
        return "-"
    return f"{point[0]:.2f} (@{point[1]})" if with_step else f"{point[0]:.2f}"


OPTIONAL_COLUMNS = {"intra_fid": "intra-FID", "precision": "precision", "recall": "recall"}  # metric -> column


def fmt_last(point: tuple[float, int] | None) -> str:
    """A last value with its G step (these metrics are often measured at the last checkpoint only)."""
    return "-" if point is None else f"{point[0]:.3g} (@{point[1]})"


def table(runs: list[Run]) -> str:
    optional = [key for key in OPTIONAL_COLUMNS if any(r.final(key) for r in runs)]
    header = ["run", "norm", "arch", "G steps", "best FID", "final FID", "best IS", "final IS",
              *(OPTIONAL_COLUMNS[key] for key in optional), "protocol"]
    rows = [[r.path.name, r.norm, r.arch, str(r.g_steps), fmt(r.best("fid", True), True), fmt(r.final("fid")),
             fmt(r.best("is_mean", False), True), fmt(r.final("is_mean")), *(fmt_last(r.final(k)) for k in optional),
             r.protocol] for r in runs]
    return markdown_table(header, rows)



def plot(runs: list[Run], out: Path) -> None:
    with png_figure(out, size=(7, 4.5), legend_size=8) as ax:
        for r in runs:
            points = sorted((s, v["fid"]) for s, v in r.curve.items() if "fid" in v)
            if points:
                steps, fids = zip(*points, strict=True)
                ax.plot(steps, fids, marker="o", markersize=3, label=f"{r.path.name} ({r.norm}, {r.arch})")
        ax.set_xlabel("generator step")
        ax.set_ylabel("FID (lower is better)")
        protocols = sorted({r.protocol for r in runs if r.protocol != "-"})
        ax.set_title("FID vs generator step" + (f"\n{'; '.join(protocols)}" if protocols else ""), fontsize=9)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gan compare", description=__doc__)
    p.add_argument("runs", nargs="+", help="run folders (checkpoints/<run>) written by gan fit")
    p.add_argument("--plot", default="compare_fid.png", help="PNG of FID against generator step")
    p.add_argument("--out", help="also write the markdown table to this file")
    p.add_argument("--group", metavar="DIR",
                   help="group the runs by variant (gan study's study.json, else norm + convnorm options): mean +- "
                        "std over seeds, FID bands and per-layer spectral norms, written to DIR/report.md + PNGs")
    args = p.parse_args(argv)
    if args.group:
        from gan.study.report import read_runs, write_report

        for run in args.runs:
            read_run(Path(run))  # one line for a folder that does not exist
        print(write_report(read_runs([Path(r) for r in args.runs]), Path(args.group), "gan compare"))
        return 0
    runs = [read_run(Path(r)) for r in args.runs]  # cheap: the outputs are checked before anything is printed
    has_fid = any("fid" in v for r in runs for v in r.curve.values())
    if args.out:
        check_writable_file(Path(args.out), f"--out {args.out!r}", "table.md")
    if has_fid:
        check_writable_file(Path(args.plot), f"--plot {args.plot!r}", "compare_fid.png")
    text = table(runs)
    print(text)
    if args.out:  # atomic, folders created as for --plot: a failed write leaves an earlier table whole
        with explain_write_errors(f"--out {args.out!r}", "the table", kept="it is printed above"):
            atomic_write(Path(args.out), (text + "\n").encode())
    if has_fid:
        with explain_write_errors(f"--plot {args.plot!r}", "the plot"):
            plot(runs, Path(args.plot))
        print(f"\nplot: {args.plot}")
    else:
        print("\nno FID logged in these runs (add gan.callbacks.fidelity.FidelityCallback to the config); no plot")
    return 0
