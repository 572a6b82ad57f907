"""The ``--device`` rule every command shares: ``auto`` is the GPU when there is one, else the CPU."""

from __future__ import annotations

import torch

from gan.errors import UserError

FORMS = "auto, cpu, cuda or cuda:i"


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:i`` as a torch device; UserError for any other string and for a GPU this
    machine lacks (checked here: torch would fail later, deep in loading a checkpoint or in the first kernel)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as err:
        raise UserError(f"--device {spec!r} is not a device; use {FORMS}") from err
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {spec!r} is not supported; use {FORMS}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec!r}: no CUDA GPU is available here; use --device cpu (or auto)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise UserError(f"--device {spec!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}; "
                            "pick one of those (or auto)")
    return device
