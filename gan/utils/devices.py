"""The ``--device`` rule every command shares: ``auto`` is the GPU when there is one, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:i`` as a torch device."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)
