"""Files that stay whole when processes crash or run at the same time: atomic writes and OS file locks.

Several ``gan`` processes share folders (a study's runs, a DDP launch, two users on one data root), any of them may
be killed at any moment, and what is already on disk must survive that.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gan.errors import UserError


def check_writable_folder(folder: Path, setting: str) -> None:
    """UserError unless new files can be written in ``folder`` or, where it is missing, in the nearest folder above it
    that exists (where ``mkdir -p`` would start): checked before long work rather than as a traceback after it.
    The check writes and removes a probe file, since ``os.access`` misjudges root, read-only mounts and immutable
    folders."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{setting}: {str(existing)!r} is a file, not a folder; pass a path inside a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".gan-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"{setting}: cannot write in {str(existing)!r} ({err.strerror or err}); pass a path in a "
                        "writable folder") from err


def check_writable_file(path: Path, setting: str, example: str) -> None:
    """UserError unless ``path`` can be written as a file (missing folders above it are made): not a folder, below a
    folder that exists or can be made and takes new files. ``example``: a file name to suggest inside a folder."""
    if path.is_dir():
        raise UserError(f"{setting} is a folder; name a file in it, e.g. {path / example}")
    check_writable_folder(path.parent, setting)


@contextlib.contextmanager
def explain_write_errors(setting: str, what: str, kept: str | None = None,
                         fix: str = "pass a path in a writable folder") -> Iterator[None]:
    """An OSError while writing ``what`` as one UserError naming ``setting`` and ``fix``; ``kept`` says where the
    result can still be read (e.g. printed above)."""
    try:
        yield
    except OSError as err:
        cause = f"{err.strerror or err}" + (f"; {kept}" if kept else "")
        raise UserError(f"{setting}: cannot write {what} ({cause}); {fix}") from err


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file beside ``path`` (same filesystem), fsync, then rename over it: a crash leaves either the
    old file or the new one, never half of one, and no temp file elsewhere (e.g. in ``/tmp``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class FileLock:
    """An exclusive ``flock`` on ``path`` (created if missing, never deleted, so every process locks the same file).

    The kernel drops the lock when its holder exits, however it exits, so a killed process never leaves a lock
    that blocks the next one. The file's contents are free for the holder to describe itself.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock (waiting for it when ``wait``); False when another process holds it and ``wait`` is off."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def write(self, text: str) -> None:
        """Replace the lock file's contents (only while holding it)."""
        if self._fd is None:
            raise RuntimeError(f"write() to {self.path} needs the lock")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode(), 0)

    def read(self) -> str:
        try:
            return self.path.read_text()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
