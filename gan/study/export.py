"""A study's small result files, copied out of its (large) study folder so that its report can be regenerated
anywhere without the checkpoints: ``gan study GRID --export docs/results`` then
``gan study GRID --report-only --out-dir docs/results``.

Kept: what :func:`gan.study.report.summarize_run` reads (``study.json``, ``config.yaml``, ``logs/metrics.csv``,
the monitors' ``*.jsonl``, ``ckpt/*.eval.json``, ``eval/*.json``), each run's config from ``configs/`` and the
grid file itself. Left out: checkpoints, sample grids, TensorBoard events, job logs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gan.errors import UserError
from gan.runs.layout import STUDY_MARKER
from gan.study.grid import Grid

# (pattern relative to a run folder): small text files, a few kB to a few hundred kB per run
RUN_FILES = (STUDY_MARKER, "config.yaml", "logs/metrics.csv", "*.jsonl", "ckpt/*.eval.json", "eval/*.json")


def result_files(run_dir: Path) -> list[Path]:
    """The files of ``run_dir`` that its report row is computed from."""
    return sorted({path for pattern in RUN_FILES for path in run_dir.glob(pattern) if path.is_file()})


def export_results(grid: Grid, dest: Path) -> int:
    """Copy every run's result files to ``dest/<study>/`` in the study's own layout (the same run names and
    folders, so ``--out-dir dest`` reads it as the study); returns how many files were copied."""
    runs = [run for run in grid.runs() if run.dir.is_dir()]
    if not runs:
        raise UserError(f"study {grid.name}: no run folders under {grid.dir}; train it first (or pass --out-dir)")
    target = dest / grid.name
    if target.resolve() == grid.dir.resolve():
        raise UserError(f"--export {dest}: that is the study's own folder; export to another folder")
    copied = 0
    for run in runs:
        for path in result_files(run.dir):
            out = target / run.dir.relative_to(grid.dir) / path.relative_to(run.dir)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)
            copied += 1
        config = grid.dir / "configs" / f"{run.name}.yaml"
        if config.is_file():
            (target / "configs" / config.relative_to(grid.dir / "configs")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(config, target / "configs" / config.relative_to(grid.dir / "configs"))
            copied += 1
    shutil.copy2(grid.path, target / "grid.yaml")
    return copied + 1
