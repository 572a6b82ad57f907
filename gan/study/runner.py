"""Runs a study's jobs as separate processes, N at a time: training (fresh or resumed), then ``gan eval`` of every
saved checkpoint (the curve protocol) and of the last one (the final protocol).

Everything is derived from what is on disk, so an interrupted study continues where it stopped: a finished run
(last checkpoint at ``max_g_steps``) is skipped, an interrupted one resumes from its ``last.ckpt``, an evaluation
whose JSON exists is not repeated. A failed job is reported with its log and not retried in the same invocation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from gan.runs.layout import eval_result_path
from gan.study.grid import STUDY_MARKER, Grid, Run, final_eval_path

CURVE_PATTERN = "g*.ckpt"
GAN_COMMAND = [sys.executable, "-m", "gan.cli"]  # how a job starts gan (tests start it with a tiny extractor)


def trained_steps(run: Run) -> int:
    """G steps in the run's last checkpoint (0 when there is none)."""
    from gan.training.module import read_checkpoint

    last = run.dir / "ckpt" / "last.ckpt"
    return int(read_checkpoint(last).get("g_step", 0)) if last.is_file() else 0


def up_to_date(result: Path, source: Path) -> bool:
    """An evaluation counts when it exists and is not older than its checkpoint (a resumed run rewrites those)."""
    return result.is_file() and result.stat().st_mtime >= source.stat().st_mtime


@dataclass
class Job:
    kind: str  # "train" or "eval"
    run: Run
    argv: list[str]
    label: str
    output: Path | None = None  # the file an eval job writes

    def log_path(self, grid: Grid) -> Path:
        return grid.dir / "logs" / f"{self.label}.log"


def eval_argv(ckpt: Path, protocol: dict, out: Path) -> list[str]:
    argv = ["eval", str(ckpt), "--json", str(out), "--metrics", "fid"]
    for key, value in protocol.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def plan(grid: Grid, runs: list[Run], evaluate: bool = True) -> list[Job]:
    """The jobs still to do, in order: each run's training, or, once trained, its missing evaluations (none when
    ``evaluate`` is off: training on a machine without Inception weights, scoring later on another)."""
    jobs = []
    for run in runs:
        steps = trained_steps(run)
        if steps < run.max_g_steps:
            config = grid.dir / "configs" / f"{run.name}.yaml"
            argv = ["fit", "--config", str(config)]
            if steps:
                argv += ["--ckpt_path", str(run.dir / "ckpt" / "last.ckpt")]
            jobs.append(Job("train", run, argv, f"{run.name}-train" + ("-resume" if steps else "")))
            continue
        if not evaluate:
            continue
        for ckpt in sorted((run.dir / "ckpt").glob(CURVE_PATTERN)):
            step = int(ckpt.stem[1:])
            if step % grid.curve_every and step != run.max_g_steps:
                continue
            out = eval_result_path(ckpt)  # where gan compare and the report look for the curve
            if not up_to_date(out, ckpt):
                jobs.append(Job("eval", run, eval_argv(ckpt, grid.curve, out), f"{run.name}-{ckpt.stem}", out))
        out, last = final_eval_path(run.dir), run.dir / "ckpt" / "last.ckpt"
        if not up_to_date(out, last):
            jobs.append(Job("eval", run, eval_argv(last, grid.final, out), f"{run.name}-final", out))
    return jobs


def write_configs(grid: Grid, runs: list[Run]) -> None:
    """Each run's full config under ``<study>/configs/`` (what its training process reads), and a
    ``study.json`` in each run folder naming its study, variant and seed (what reports group by)."""
    folder = grid.dir / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    for run in runs:
        path = folder / f"{run.name}.yaml"
        text = yaml.safe_dump(run.config, sort_keys=False)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        run.dir.mkdir(parents=True, exist_ok=True)
        marker = {"study": grid.name, "variant": run.variant, "seed": run.seed}
        (run.dir / STUDY_MARKER).write_text(json.dumps(marker) + "\n")


def default_jobs(threads: int) -> int:
    """One process per GPU, else as many single-threaded processes as there are cores for them."""
    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return max(1, (os.cpu_count() or 1) // max(threads, 1))


def execute(grid: Grid, jobs_at_once: int, threads: int, dry_run: bool = False,
            evaluate: bool = True) -> list[Job]:
    """Run every job of the study (only the training ones unless ``evaluate``); returns the failed ones."""
    runs = grid.runs()
    write_configs(grid, runs)
    if dry_run:
        for job in plan(grid, runs, evaluate):
            print(f"would run: gan {' '.join(job.argv)}")
        return []
    (grid.dir / "logs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    running: dict[str, tuple[Job, subprocess.Popen, float, int]] = {}
    failed: dict[str, Job] = {}
    todo = plan(grid, runs, evaluate)
    while True:
        training = {job.run.name for job, *_ in running.values() if job.kind == "train"}
        ready = [j for j in todo if j.label not in running and j.label not in failed and j.run.name not in training]
        free_slots = [s for s in range(jobs_at_once) if s not in {slot for *_, slot in running.values()}]
        for job, slot in zip(ready, free_slots):
            slot_env = {**env, "CUDA_VISIBLE_DEVICES": str(slot % gpus)} if gpus else env
            with open(job.log_path(grid), "a") as log:
                process = subprocess.Popen([*GAN_COMMAND, *job.argv], stdout=log,
                                           stderr=subprocess.STDOUT, env=slot_env)
            running[job.label] = (job, process, time.perf_counter(), slot)
            todo.remove(job)
            print(f"start  {job.label}", flush=True)
        if not running:
            break
        time.sleep(2)
        finished = [label for label, (_, process, *_) in running.items() if process.poll() is not None]
        for label in finished:
            job, process, started, _ = running.pop(label)
            ok = process.returncode == 0
            status = "done  " if ok else f"FAILED (exit {process.returncode}, log {job.log_path(grid)})"
            print(f"{status} {label} ({time.perf_counter() - started:.0f} s)", flush=True)
            if not ok:
                failed[label] = job
        if finished:  # a finished job changes what is left to do for runs with nothing running
            busy = {job.run.name for job, *_ in running.values()}
            idle = [r for r in runs if r.name not in busy]
            todo = [j for j in todo if j.run.name in busy] + plan(grid, idle, evaluate)
    return list(failed.values())
