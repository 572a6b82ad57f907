"""Choosing ConvNorm's algorithm by timing it, once per layer and input shape (as ``cudnn.benchmark`` does for convs).

Which algorithm is cheapest depends on the image size, the batch, the channel counts, the stride and the device,
in ways no simple rule captures; all of them compute the same operator to rounding. So the first train forward of
a new input shape times the candidates on that very input and keeps the winner. Winners are also kept for the
process, keyed by the layer's geometry and the input: identical layers (a ResNet's repeated blocks) and a second
run in the same process (a study) reuse a timing instead of repeating it and so make the same choice.

Timing is skipped, and the default algorithm used, where it could not help or would break reproducibility:

* layers too small to time reliably (conv work below ``MIN_TIMED_MACS``): noise would decide, per process;
* eval mode, torch.compile tracing and CUDA-graph capture (no side effects and no host syncs there);
* deterministic mode (``torch.use_deterministic_algorithms``, Lightning's ``deterministic=True``), which asks
  for the same numbers from run to run;
* multi-process training: ranks timing apart could choose differently and drift apart by rounding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence

import torch
from torch import Tensor

MIN_TIMED_MACS = 2**24  # ~17M multiply-adds (a few ms of conv on one CPU core): below, noise decides
REPEATS = 5  # timed runs per candidate, round-robin after one warm-up each; each one's quickest run counts
MARGIN = 1.05  # another candidate replaces the first (the default) only when quicker by more than this factor

_winners: dict[Hashable, int] = {}  # process-wide: (layer geometry, input key, candidates) -> winner's index


def timing_allowed(x: Tensor, training: bool, conv_macs: int) -> bool:
    """Whether a forward on ``x`` may time the candidates (see the module docstring for when it may not)."""
    if not training or conv_macs < MIN_TIMED_MACS or torch.are_deterministic_algorithms_enabled():
        return False
    if torch.compiler.is_compiling() or (x.is_cuda and torch.cuda.is_current_stream_capturing()):
        return False
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()
                and torch.distributed.get_world_size() > 1)


def known_winner(key: Hashable) -> int | None:
    """The index this process already timed as fastest for ``key``, if any."""
    return _winners.get(key)


def fastest(key: Hashable, runs: Sequence[Callable[[], object]], device: torch.device) -> int:
    """Index of the quickest of ``runs`` (each a forward + backward), timed round-robin; remembered under ``key``.

    A candidate's quickest run is its measure: another process or a busy core only ever adds time, and one such
    hiccup in a median of a few runs made the quickstart's first forwards pick algorithms 20-50 % slower than the
    default. The default (``runs[0]``) is kept unless another candidate beats it by more than ``MARGIN``, so that
    near ties, which noise decides, keep the untimed choice.
    """
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for run in runs:  # warm-up: plans, allocator, caches
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(REPEATS):
        for i, run in enumerate(runs):
            sync()
            start = time.perf_counter()
            run()
            sync()
            times[i].append(time.perf_counter() - start)
    best = [min(t) for t in times]
    challenger = best.index(min(best))
    _winners[key] = challenger if best[challenger] * MARGIN < best[0] else 0
    return _winners[key]


def forget_winners() -> None:
    """Drop the process-wide timings, so that the next train forward of every layer times again."""
    _winners.clear()
