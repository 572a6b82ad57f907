"""The on-disk cache of converted weights and reference statistics: where it lives, and files in it written
atomically and read back only when their checksum holds (a damaged file is rebuilt, never trusted)."""

from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path

import torch

from gan.utils.files import atomic_write


def cache_root() -> Path:
    """Where converted weights and reference statistics live: ``$GAN_CACHE`` or ``~/.cache/gan``."""
    return Path(os.environ.get("GAN_CACHE") or Path.home() / ".cache" / "gan")


def log(message: str, verbose: bool = True) -> None:
    """A progress note on stderr (what is cached, converted or rebuilt), kept off stdout's tables."""
    if verbose:
        print(message, file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checked(obj: dict, path: Path) -> None:
    """``torch.save`` behind a sha256 header line, so :func:`load_checked` can tell damage from data."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write(path, hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


def load_checked(path: Path, verbose: bool = True) -> dict | None:
    """The object saved by :func:`save_checked`, or None when the file is missing or damaged."""
    if not path.is_file():
        return None
    try:
        digest, _, data = path.read_bytes().partition(b"\n")
        if hashlib.sha256(data).hexdigest().encode() != digest:
            raise ValueError("checksum mismatch")
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # any damage means: rebuild, never trust
        log(f"cache file {path} is damaged ({err}); rebuilding it", verbose)
        return None
