"""The time-budget harness of ``gan bench gpu``: cells that each measure one thing, run in order, each failure one
line in its place, a cell still running at the budget stopped and the rest skipped (so a cut-short run still
reports what it measured).
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from gan.errors import UserError


@dataclass
class Cell:
    """One measurement: ``run()`` returns its numbers; ``status`` is ok, failed: <reason> or skipped: <reason>."""

    section: str
    key: dict[str, str]
    run: Callable[[], dict[str, float]]
    needs_s: float = 1.0
    status: str = "pending"
    result: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class CellTimeout(BaseException):
    """Raised in the main thread when a cell outlives the budget (a BaseException, so that no library's
    ``except Exception`` swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise CellTimeout after ``seconds`` (main thread only; elsewhere the budget is checked between cells)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):  # noqa: ANN001 - signal handler signature
        raise CellTimeout(f"stopped at the time budget after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_line(err: BaseException) -> str:
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = message if isinstance(err, (UserError, CellTimeout)) else f"{type(err).__name__}: {message}"
    return text[:300]


def run_cells(cells: list[Cell], budget_s: float, write: Callable[[], None]) -> None:
    """Run every cell that can start within the budget, each isolated from the others' failures."""
    start = time.monotonic()
    for cell in cells:
        left = budget_s - (time.monotonic() - start)
        if left < cell.needs_s:
            cell.status = f"skipped: time budget ({max(left, 0):.0f} s left, needs {cell.needs_s:.0f} s)"
            continue
        began = time.monotonic()
        try:
            with deadline(left):
                cell.result = cell.run()
            cell.status = "ok"
        except (Exception, CellTimeout) as err:  # noqa: BLE001 - any failure is reported in the cell's place
            cell.status = f"failed: {one_line(err)}"
        cell.seconds = time.monotonic() - began
        release_memory()
        print(f"[{time.monotonic() - start:5.0f} s] {cell.section} {' '.join(cell.key.values())}: "
              f"{cell.status if cell.status != 'ok' else summary(cell)}", flush=True)
        write()


def release_memory() -> None:
    gc.collect()
    torch._dynamo.reset()  # compiled graphs of the cell's models
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def summary(cell: Cell) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in cell.result.items() if isinstance(v, float | int))


# ---- the measurements -----------------------------------------------------------------------------------------
