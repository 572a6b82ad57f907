"""Train / eval mode around side work (sampling, measuring) that must leave training exactly as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode (BatchNorm running stats, no ConvNorm EMA step, no spectral-norm power iteration)
    for the duration of the block; afterwards every submodule gets back its own earlier mode."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes.items():
            m.train(training)
