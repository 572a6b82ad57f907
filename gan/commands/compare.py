"""``gan compare RUN_DIR...``: the normalizations side by side, a markdown table and an FID-vs-G-step plot.

FID / IS per G step come from the FID callback (``fidelity.jsonl``, ``eval/*`` columns of metrics.csv) or,
for runs trained without it, from ``gan eval`` of the run's checkpoints (``ckpt/g*.eval.json``)."""

from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gan.bench import markdown_table
from gan.errors import UserError


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


def find_key(tree: object, names: tuple[str, ...]) -> str | None:
    """First value under any of ``names`` anywhere in a nested config (LightningCLI nests init_args)."""
    if isinstance(tree, dict):
        for name in names:
            if isinstance(tree.get(name), str):
                return tree[name]
        for value in tree.values():
            found = find_key(value, names)
            if found:
                return found
    elif isinstance(tree, list):
        for value in tree:
            found = find_key(value, names)
            if found:
                return found
    return None


def read_run(path: Path) -> Run:
    if not path.is_dir():
        raise UserError(f"run folder {str(path)!r} does not exist; pass folders like checkpoints/<run>")
    run = Run(path)
    config = path / "config.yaml"
    if config.is_file():
        tree = yaml.safe_load(config.read_text()) or {}
        run.norm = find_key(tree.get("model", tree), ("norm", "d_norm")) or "?"
        run.arch = find_key(tree.get("model", tree), ("arch",)) or "?"
    for csv_path in sorted(path.rglob("metrics.csv")):  # training progress + logged eval/* columns
        with open(csv_path, newline="") as f:
            for row in csv.DictReader(f):
                step = row.get("g_step") or row.get("step")
                if not step:
                    continue
                step = int(float(step))
                run.g_steps = max(run.g_steps, step)
                for key in ("fid", "is_mean"):
                    if row.get(f"eval/{key}"):
                        run.curve.setdefault(step, {})[key] = float(row[f"eval/{key}"])
    jsonl = path / "fidelity.jsonl"  # the callback's records, with the protocol of each number
    entries = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.is_file() else []
    if not entries:  # else: `gan eval` results of the run's checkpoints (ckpt/*.eval.json)
        entries = [e for e in map(json.loads, map(Path.read_text, sorted(path.rglob("*.eval.json")))) if "g_step" in e]
    if not (config.is_file() or run.g_steps or entries):
        raise UserError(f"{str(path)!r} is not a run folder (no config.yaml, logs/metrics.csv, fidelity.jsonl or "
                        "ckpt/*.eval.json); pass folders written by gan fit, like checkpoints/<run>")
    for entry in entries:
        run.curve[int(entry["g_step"])] = entry["metrics"]
        run.g_steps = max(run.g_steps, int(entry["g_step"]))
        p, w = entry["protocol"], entry["weights"]
        run.protocol = f"{p['num_fake']} vs {p.get('reference', '?')} n={p.get('num_real_used')}, {w['kind']}"
    return run


def fmt(point: tuple[float, int] | None, with_step: bool = False) -> str:
    if point is None:
        return "-"
    return f"{point[0]:.2f} (@{point[1]})" if with_step else f"{point[0]:.2f}"


def table(runs: list[Run]) -> str:
    header = ["run", "norm", "arch", "G steps", "best FID", "final FID", "best IS", "final IS", "protocol"]
    rows = [[r.path.name, r.norm, r.arch, str(r.g_steps), fmt(r.best("fid", True), True), fmt(r.final("fid")),
             fmt(r.best("is_mean", False), True), fmt(r.final("is_mean")), r.protocol] for r in runs]
    return markdown_table(header, rows)


def plot(runs: list[Run], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for r in runs:
        points = sorted((s, v["fid"]) for s, v in r.curve.items() if "fid" in v)
        if points:
            steps, fids = zip(*points, strict=True)
            ax.plot(steps, fids, marker="o", markersize=3, label=f"{r.path.name} ({r.norm}, {r.arch})")
    ax.set_xlabel("generator step")
    ax.set_ylabel("FID (lower is better)")
    protocols = sorted({r.protocol for r in runs if r.protocol != "-"})
    ax.set_title("FID vs generator step" + (f"\n{'; '.join(protocols)}" if protocols else ""), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


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
        from gan.study.report import write_report

        for run in args.runs:
            read_run(Path(run))  # one line for a folder that does not exist
        print(write_report([Path(r) for r in args.runs], Path(args.group), "gan compare"))
        return 0
    runs = [read_run(Path(r)) for r in args.runs]
    text = table(runs)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if any("fid" in v for r in runs for v in r.curve.values()):
        plot(runs, Path(args.plot))
        print(f"\nplot: {args.plot}")
    else:
        print("\nno FID logged in these runs (add gan.callbacks.fidelity.FidelityCallback to the config); no plot")
    return 0
