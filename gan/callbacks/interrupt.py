"""Ctrl-C (SIGINT) and a cluster's SIGTERM end training at the next step boundary, with ``last.ckpt`` saved there.

A signal can land in the middle of a G step (between the D and G updates), where a checkpoint would not resume
exactly. So the handler only records it; at the end of the step in flight this callback sets
``trainer.should_stop``, ``GStepCheckpoint`` (listed after it) writes ``last.ckpt`` as it does at the final step, and
the caller reads :attr:`StopOnSignal.stopped` to exit non-zero. A second signal interrupts at once, unsaved.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

import pytorch_lightning as pl

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal(pl.Callback):
    """Stops training cleanly after the step in which SIGINT or SIGTERM arrived (``received``: that signal, on this
    process; ``stopped``: training stopped for a signal, on this or another rank)."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self.stopped = False
        self._previous: dict[int, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():  # Python lets only the main thread set handlers
            self._previous = {sig: signal.signal(sig, self._record) for sig in SIGNALS}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self._restore()
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping without saving")
        self.received = signal.Signals(signum)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        stop = self.received is not None
        if trainer.world_size > 1:  # every rank must stop after the same step (one tiny all-reduce per step)
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop and not trainer.should_stop:  # (a signal in the final step changes nothing)
            trainer.should_stop = self.stopped = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
