"""Speed benchmarks behind ``gan bench``: shared timing helpers (every ratio is measured side by side, in one run)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from gan.utils.memory import page_setting


def synchronize() -> None:
    """Wait for queued GPU work, so that a timer stopped after it counts it (nothing to wait for on a CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn`` (synchronising CUDA so GPU work is counted)."""
    return interleaved_medians({"fn": fn}, repeats, warmup)["fn"]


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 1) -> dict[str, float]:
    """Median wall time of each function, timed round-robin so that load from other processes hits all alike.

    Ratios of these medians are what the benchmarks report: side by side, in one run.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def device_description() -> str:
    """The machine a benchmark ran on, for the table's caption."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} threads, {page_setting()} (torch {torch.__version__})"
