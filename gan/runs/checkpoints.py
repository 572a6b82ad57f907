"""Checkpoint files read without running code, written without ever leaving half a file, checked against the model.

A checkpoint is a pickle, and unpickling may call any function the file names, so a shared or downloaded
``.ckpt`` could run commands. Every checkpoint ``gan`` reads (``gan sample``, ``gan eval``, ``gan fit --ckpt_path``
and Lightning's own resume) goes through :func:`load_checkpoint_file`: ``torch.load(weights_only=True)``, which
rebuilds only tensors, dtypes and plain values (dicts, lists, tuples, strings, numbers). That is all a ``gan fit``
checkpoint holds, so no other type is allow-listed: a file that names one is refused, naming it, before anything in
it is built.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins import TorchCheckpointIO
from torch import nn
from torch.serialization import get_unsafe_globals_in_checkpoint

from gan.errors import UserError
from gan.utils.files import atomic_write


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load`` of plain data only; a file naming any other type, or not a torch file, is a UserError."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            names = get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001 - not even a readable archive: report it as damaged below
            names = []
        if names:
            raise UserError(
                f"checkpoint {str(path)!r} refused: it names {', '.join(names)}, which is code, not data (a gan fit "
                "checkpoint holds only tensors and plain values); use a checkpoint written by gan fit"
            ) from None
        raise UserError(f"checkpoint {str(path)!r} is unreadable ({type(err).__name__}); pass an intact .ckpt") from err
    except (RuntimeError, OSError, EOFError, ValueError) as err:  # truncated / not a torch file
        raise UserError(f"checkpoint {str(path)!r} is unreadable ({type(err).__name__}); pass an intact .ckpt") from err


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with safe loading (:func:`load_checkpoint_file`, whatever ``weights_only`` the
    caller asks for) and saving through a temp file beside the target (Lightning's own goes through ``/tmp`` and
    leaves it there when interrupted)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(Path(path), buffer.getvalue())

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location)


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: a config's ``(0.0, 0.9)`` equals a checkpoint's ``[0.0, 0.9]``."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def check_fits(model: nn.Module, config: Mapping[str, Any], checkpoint: Mapping[str, Any], path: str) -> None:
    """Refuse a checkpoint whose state does not load into ``model`` (built from ``config``, the run's model section),
    naming the model fields that differ, before anything is written. Tried on a copy: ``model`` stays as built."""
    try:
        copy.deepcopy(model).load_state_dict(checkpoint["state_dict"])
        return
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1].strip()
    trained = checkpoint.get("hyper_parameters") or {}
    differ = [f"model.{key}: {trained[key]!r} in the checkpoint, {config[key]!r} in the config"
              for key in config if key in trained and _plain(trained[key]) != _plain(config[key])]
    raise UserError(
        f"--ckpt_path {path} does not fit the configured model ({'; '.join(differ) or reason}); resume with the "
        "config the checkpoint was trained with (its run's config.yaml), or drop --ckpt_path to start a new run"
    )
