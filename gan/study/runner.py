"""Runs a study's jobs (:class:`Job`, shared with the cluster launcher in :mod:`gan.study.cluster`) as separate local
processes, N at a time: training (fresh or resumed), then ``gan eval`` of every
saved checkpoint (the curve protocol) and of the last one (the final protocol).

Everything is derived from what is on disk, so an interrupted study continues where it stopped: a finished run
(last checkpoint at ``max_g_steps``) is skipped, an interrupted one resumes from its ``last.ckpt``, an evaluation
whose JSON exists is not repeated. A failed job is reported with its log and not retried in the same invocation.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from gan.runs.layout import STUDY_MARKER, eval_result_path, final_eval_path, last_checkpoint, step_checkpoints
from gan.study.grid import Grid, Run

GAN_COMMAND = [sys.executable, "-m", "gan.cli"]  # how a job starts gan (tests start it with a tiny extractor)


def trained_steps(run: Run) -> int:
    """G steps in the run's last checkpoint (0 when there is none)."""
    from gan.training.module import read_checkpoint

    last = last_checkpoint(run.dir)
    return int(read_checkpoint(last).get("g_step", 0)) if last.is_file() else 0


def up_to_date(result: Path, source: Path) -> bool:
    """An evaluation counts when it exists and is not older than its checkpoint (a resumed run rewrites those)."""
    return result.is_file() and result.stat().st_mtime >= source.stat().st_mtime


@dataclass
class Job:
    """One unit of a study's work, the same for every launcher: the ``gan`` arguments of a training or an evaluation
    of one run. Local processes and cluster jobs both run :meth:`command`."""

    kind: str  # "train" or "eval"
    run: Run
    argv: list[str]
    label: str
    output: Path | None = None  # the file an eval job writes
    resume_from: Path | None = None  # a training job resumes from this checkpoint when it exists as the job starts

    def command(self) -> list[str]:
        """The ``gan`` arguments as of now: a training job resumes from ``last.ckpt`` if there is one by then, so a
        job requeued after a preemption or time limit continues where its first attempt saved."""
        if self.resume_from is not None and self.resume_from.is_file():
            return [*self.argv, "--ckpt_path", str(self.resume_from)]
        return list(self.argv)

    @property
    def key(self) -> str:
        """The label without ``-resume``: a training that failed after saving is not retried as its resumption in
        the same invocation (a re-run of gan study resumes it)."""
        return self.label.removesuffix("-resume")

    def log_path(self, grid: Grid) -> Path:
        return grid.dir / "logs" / f"{self.label}.log"


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_study() -> Callable[[], None] | None:
    """What each job's process runs before it starts (Linux): ask the kernel for SIGTERM when ``gan study`` dies,
    even by ``kill -9``, so no job trains on as an orphan; a training job saves ``last.ckpt`` on SIGTERM and a re-run
    of the study resumes it. Elsewhere None: the jobs outlive a killed study (docs/studies.md says so). libc is
    loaded here, in the study, so that the forked child only makes the one system call."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def job_env(threads: int) -> dict[str, str]:
    """What a job's process gets on top of its environment: ``threads`` torch threads, unbuffered output."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}


def eval_argv(ckpt: Path, protocol: dict, out: Path) -> list[str]:
    protocol = dict(protocol)
    argv = ["eval", str(ckpt), "--json", str(out), "--metrics", "fid,prc" if protocol.pop("prc", False) else "fid"]
    if protocol.pop("intra_fid", False):
        argv.append("--intra-fid")
    for key, value in protocol.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv



def plan(grid: Grid, runs: list[Run], evaluate: bool = True) -> list[Job]:
    """The jobs still to do, in order: each run's training, or, once trained, its missing evaluations (none when
    ``evaluate`` is off: training on a machine without Inception weights, scoring later on another)."""
    jobs = []
    for run in runs:
        regime = run.regime
        curve, final, every = (regime.curve, regime.final, regime.curve_every) if regime else (None, None, 1)
        steps = trained_steps(run)
        last = last_checkpoint(run.dir)
        if steps < run.max_g_steps:
            config = grid.dir / "configs" / f"{run.name}.yaml"
            jobs.append(Job("train", run, ["fit", "--config", str(config)],
                            f"{run.name}-train" + ("-resume" if steps else ""), resume_from=last))
            continue
        if not evaluate:
            continue
        for step, ckpt in step_checkpoints(run.dir) if curve is not None else ():
            if step % every and step != run.max_g_steps:
                continue
            out = eval_result_path(ckpt)  # where gan compare and the report look for the curve
            if not up_to_date(out, ckpt):
                jobs.append(Job("eval", run, eval_argv(ckpt, curve, out), f"{run.name}-{ckpt.stem}", out))
        out = final_eval_path(run.dir)
        if final is not None and not up_to_date(out, last):
            jobs.append(Job("eval", run, eval_argv(last, final, out), f"{run.name}-final", out))
    return jobs


def write_configs(grid: Grid, runs: list[Run]) -> None:
    """Each run's full config under ``<study>/configs/`` (what its training process reads), and a
    ``study.json`` in each run folder naming its study, regime, variant and seed (what reports group by)."""
    folder = grid.dir / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    for run in runs:
        path = folder / f"{run.name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(run.config, sort_keys=False)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        run.dir.mkdir(parents=True, exist_ok=True)
        marker = {"study": grid.name, "variant": run.variant, "seed": run.seed}
        if run.regime_name is not None:  # a grid without regimes keeps its markers as they were
            marker = {"study": grid.name, "regime": run.regime_name, "variant": run.variant, "seed": run.seed}
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
            print(f"would run: gan {' '.join(job.command())}")
        return []
    (grid.dir / "logs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **job_env(threads)}
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    before_start = die_with_study()
    running: dict[str, tuple[Job, subprocess.Popen, float, int]] = {}
    failed: dict[str, Job] = {}
    todo = plan(grid, runs, evaluate)
    while True:
        training = {job.run.name for job, *_ in running.values() if job.kind == "train"}
        ready = [j for j in todo if j.label not in running and j.key not in failed and j.run.name not in training]
        free_slots = [s for s in range(jobs_at_once) if s not in {slot for *_, slot in running.values()}]
        for job, slot in zip(ready, free_slots):
            slot_env = {**env, "CUDA_VISIBLE_DEVICES": str(slot % gpus)} if gpus else env
            job.log_path(grid).parent.mkdir(parents=True, exist_ok=True)
            with open(job.log_path(grid), "a") as log:
                process = subprocess.Popen([*GAN_COMMAND, *job.command()], stdout=log,
                                           stderr=subprocess.STDOUT, env=slot_env, preexec_fn=before_start)
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
                failed[job.key] = job
        if finished:  # a finished job changes what is left to do for runs with nothing running
            busy = {job.run.name for job, *_ in running.values()}
            idle = [r for r in runs if r.name not in busy]
            todo = [j for j in todo if j.run.name in busy] + plan(grid, idle, evaluate)
    return list(failed.values())
