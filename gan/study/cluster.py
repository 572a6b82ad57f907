"""A study's jobs through submitit: one SLURM job per training and per evaluation (submitted as job arrays), or
submitit's local executor (the same path on one machine, as the tests run it).

Each job runs the same ``gan fit`` / ``gan eval`` command as the local launcher (:meth:`gan.study.runner.Job.command`)
as a child process, so both launchers share one job description and everything ``gan study`` derives from disk.
The study goes in waves: submit what is ready (trainings, and evaluations of trained runs), wait, plan again.

Preemption and time limits: SLURM sends submitit's signal (USR2, 90 s before the limit); :meth:`GanJob.checkpoint`
forwards SIGTERM to ``gan fit``, which saves ``last.ckpt`` at the next step boundary (``StopOnSignal``), and submitit
requeues the job, whose command then resumes from that checkpoint. A ``gan fit`` stopped by a SIGTERM of its own
(a preemption without requeue) fails its job with a message to re-run ``gan study``, which resumes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import submitit
from submitit.helpers import Checkpointable, DelayedSubmission

from gan.errors import UserError
from gan.study import runner
from gan.study.grid import SLURM_FIELDS, Grid
from gan.study.runner import Job, job_env, plan, write_configs

LAUNCHERS = ("local", "slurm", "submitit-local")  # local: processes of runner.execute; the others: submitit's
STOP_GRACE_S = 60  # how long checkpoint() waits for gan fit to save (submitit signals 90 s before a time limit)
SIGNAL_EXITS = (128 + signal.SIGINT, 128 + signal.SIGTERM)  # gan fit stopped by a signal, last.ckpt saved


class GanJob(Checkpointable):
    """A submitit job running one :class:`Job`'s ``gan`` command as a child process, its output in the study's log.

    ``gan_command`` is how gan starts (``runner.GAN_COMMAND`` of the submitting process: the tests start gan with a
    tiny feature extractor)."""

    def __init__(self, job: Job, log: Path, env: dict[str, str], gan_command: list[str]) -> None:
        self.job, self.log, self.env, self.gan_command = job, log, env, list(gan_command)
        self._process: subprocess.Popen | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_process": None}  # pickled for (re)submission: the child is this attempt's

    def __call__(self) -> str:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [*self.gan_command, *self.job.command()]
        with open(self.log, "a") as log:
            log.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {' '.join(command)}\n")
            log.flush()
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                             env={**os.environ, **self.env})
            # poll, not wait(): checkpoint() runs as a signal handler in this thread and must be able to reap it
            while (code := self._process.poll()) is None:
                time.sleep(0.5)
        if code in SIGNAL_EXITS:
            raise RuntimeError(f"gan {self.job.kind} of {self.job.run.name} was stopped by a signal and saved its "
                               f"last.ckpt; re-run gan study to resume it (log {self.log})")
        if code:
            raise RuntimeError(f"gan {self.job.kind} of {self.job.run.name} exited {code}; log {self.log}")
        return self.job.label

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """Called by submitit on its preemption / time-limit signal: let ``gan fit`` save through its SIGTERM path,
        then requeue this same job (its command resumes from the saved ``last.ckpt``)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE_S
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
        return super().checkpoint(*args, **kwargs)


def resources(grid: Grid, flags: dict[str, Any]) -> dict[str, Any]:
    """The grid's ``slurm:`` section with the command line's values on top (``None``: not given)."""
    merged = {**grid.slurm, **{k: v for k, v in flags.items() if v is not None}}
    unknown = sorted(set(merged) - set(SLURM_FIELDS))
    if unknown:
        raise UserError(f"unknown slurm resource(s) {', '.join(unknown)}; known: {', '.join(SLURM_FIELDS)}")
    return merged


def job_parameters(launcher: str, kind: str, res: dict[str, Any]) -> dict[str, Any]:
    """What ``AutoExecutor.update_parameters`` gets for the study's ``kind`` of job ("train" or "eval"): a training
    gets ``gpus_per_run`` GPUs, one task per GPU (Lightning reads SLURM's task ranks for DDP), an evaluation one GPU
    and one task."""
    if launcher not in LAUNCHERS[1:]:
        raise UserError(f"--launcher {launcher!r}: submitit runs slurm or submitit-local, not {', '.join(LAUNCHERS)}")
    if launcher == "slurm" and "time_min" not in res:
        raise UserError("--launcher slurm needs a time limit per job: slurm.time_min in the grid or --time MINUTES")
    gpus = int(res.get("gpus_per_run", 1 if launcher == "slurm" else 0))
    if kind == "eval":
        gpus = min(gpus, 1)
    params: dict[str, Any] = {
        "nodes": 1, "tasks_per_node": max(gpus, 1) if kind == "train" else 1, "gpus_per_node": gpus,
        "cpus_per_task": int(res.get("cpus_per_task", 1)),
        "timeout_min": int(res.get("time_min", 7 * 24 * 60)),  # local: submitit's 2-minute default is no limit here
    }
    if "mem_gb" in res:
        params["mem_gb"] = res["mem_gb"]
    if launcher == "slurm":
        for key in ("partition", "account", "constraint", "array_parallelism", "setup"):
            if key in res:
                params[f"slurm_{key}"] = res[key]
    return params


def make_executor(grid: Grid, launcher: str, kind: str, res: dict[str, Any]) -> submitit.AutoExecutor:
    """A submitit executor for the study's ``kind`` of job, its files in ``<study>/submitit/<job id>/``."""
    params = job_parameters(launcher, kind, res)
    try:
        executor = submitit.AutoExecutor(folder=grid.dir / "submitit" / "%j",
                                         cluster="slurm" if launcher == "slurm" else "local")
    except RuntimeError as err:  # submitit's SLURM executor checks for srun
        raise UserError(f"--launcher slurm: {err} Run gan study on the cluster's login node (--dry-run works "
                        "anywhere)") from None
    executor.update_parameters(name=f"gan-{grid.name}-{kind}", **params)
    return executor


def submit(grid: Grid, launcher: str, jobs: list[Job], res: dict[str, Any], threads: int,
           ) -> list[tuple[Job, submitit.Job]]:
    """Submit ``jobs``: the trainings as one job array, the evaluations as another."""
    env = job_env(threads)
    handles = []
    for kind in ("train", "eval"):
        batch = [job for job in jobs if job.kind == kind]
        if batch:
            executor = make_executor(grid, launcher, kind, res)
            calls = [GanJob(job, job.log_path(grid), env, runner.GAN_COMMAND) for job in batch]
            handles += list(zip(batch, executor.submit_array(calls)))
    return handles


def reason(err: Exception) -> str:
    """The last line of the job's traceback (what :class:`GanJob` raised), out of submitit's error message, which
    wraps it between dashed lines and ends with the paths of its logs."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    trace = [line for line in lines if not line.startswith("- ") and set(line) != {"-"}]
    ours = [line for line in trace if line.startswith(("RuntimeError:", "UncompletedJobError:"))]
    return (ours or trace or [type(err).__name__])[-1]


def execute(grid: Grid, launcher: str, res: dict[str, Any], threads: int, dry_run: bool = False,
            evaluate: bool = True) -> list[Job]:
    """Every job of the study through submitit, in waves until nothing is left that can run; returns the failed
    ones (each reported with its log as it ends). A job is tried once per invocation, as with the local launcher."""
    runs = grid.runs()
    write_configs(grid, runs)
    if dry_run:
        for kind in ("train", "eval"):
            params = job_parameters(launcher, kind, res)
            print(f"{kind} jobs: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())))
        for job in plan(grid, runs, evaluate):
            print(f"would submit ({job.kind}): gan {' '.join(job.command())}")
        return []
    tried: set[str] = set()
    failed: list[Job] = []
    while todo := [job for job in plan(grid, runs, evaluate) if job.key not in tried]:
        tried.update(job.key for job in todo)
        handles = submit(grid, launcher, todo, res, threads)
        for job, handle in handles:
            print(f"submit {job.label} (job {handle.job_id})", flush=True)
        started = time.perf_counter()
        by_id = {handle.job_id: job for job, handle in handles}
        for handle in submitit.helpers.as_completed([handle for _, handle in handles], poll_frequency=2):
            job = by_id[handle.job_id]
            try:
                handle.result()
                print(f"done   {job.label} ({time.perf_counter() - started:.0f} s)", flush=True)
            except Exception as err:  # a failed job: its log says why; the study goes on
                print(f"FAILED {job.label} (job {handle.job_id}, log {job.log_path(grid)}, submitit log "
                      f"{handle.paths.stderr}): {reason(err)}", flush=True)
                failed.append(job)
    return failed
