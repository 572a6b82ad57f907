"""A run folder belongs to one run and, while it trains, to one process.

``gan fit`` writes ``<run.out_dir>/<run.name>/`` (its files are named in gan.runs.layout). The rules that keep one
run from overwriting another: the name is one folder inside ``run.out_dir``; a folder that already holds checkpoints
is only trained further from one of its own checkpoints (``--ckpt_path``); and a folder is locked while a process
trains in it (``run.lock``, an OS lock that dies with its holder, so a killed run never blocks the next one).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from gan.errors import UserError
from gan.runs.layout import last_checkpoint
from gan.utils.files import FileLock, check_writable_folder

LOCK_FILE = "run.lock"


def run_folder(out_dir: str | Path, name: str) -> Path:
    """``out_dir/name``, refusing names that would write elsewhere (``../x``, ``a/b``, absolute paths)."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise UserError(f"run.name={name!r} must be a plain folder name (no '/' or '..'); to write somewhere else "
                        "set run.out_dir")
    run_dir = Path(out_dir) / name
    # the run folder, or where it would be made: a resume may write into its own folder below a read-only out_dir
    check_writable_folder(run_dir, f"run.out_dir={str(out_dir)!r}")
    return run_dir


def checkpoints_of(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "ckpt").glob("*.ckpt"))


def check_target(run_dir: Path, ckpt_path: str | None) -> None:
    """Training may write into ``run_dir`` when it holds no checkpoint yet (new, or only a config / study.json), or
    when it resumes from one of the folder's own checkpoints; anything else would replace another run's files."""
    if not checkpoints_of(run_dir):
        return
    last = last_checkpoint(run_dir)
    if ckpt_path is None:
        raise UserError(f"run.name: {run_dir} already holds a run; resume it with --ckpt_path {last} or start a new "
                        "one with --run.name NEW_NAME")
    source = Path(ckpt_path).resolve()
    if source.parent != (run_dir / "ckpt").resolve():
        origin = f"--run.name {source.parent.parent.name}" if source.parent.name == "ckpt" else "its own run folder"
        raise UserError(f"run.name: {run_dir} holds another run, which --ckpt_path {ckpt_path} would overwrite; "
                        f"resume into {origin}, or into a new one with --run.name NEW_NAME")


class RunLock:
    """The OS lock on ``run_dir/run.lock``; the file names its holder (pid, host, start) for the refusal message."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock = FileLock(run_dir / LOCK_FILE)

    def acquire(self) -> None:
        if not self._lock.acquire(wait=False):
            raise UserError(f"run folder {self.run_dir} is in use by {self._holder()}; wait until it ends, or train "
                            "into another --run.name")
        self._lock.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "started": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        for stale in (self.run_dir / "ckpt").glob(".*.tmp"):  # temp files of writes killed midway; none is ours
            stale.unlink(missing_ok=True)

    def _holder(self) -> str:
        try:
            holder = json.loads(self._lock.read())
            return f"gan fit pid {holder['pid']} on {holder['host']} (started {holder['started']})"
        except (ValueError, KeyError, TypeError):
            return "another gan fit process"

    def release(self) -> None:
        self._lock.release()
