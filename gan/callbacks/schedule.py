"""When a G-step callback acts: the one rule for sample grids, checkpoints, FID and the monitors.

Lightning counts optimizer steps (``n_dis + 1`` per SNGAN iteration); these callbacks follow the module's G-step
counter instead.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from gan.utils.validate import at_least


class GStepCallback(pl.Callback):
    """Calls :meth:`on_g_step` every ``every_n_g_steps`` generator steps and at the step training stops at.

    G step t is due when t is a multiple of the period or training stops after it (``trainer.should_stop``), and
    t has not been handled: never twice at one step, and not at the step a resumed run starts from (the run that
    saved that checkpoint handled it). Training that ends without ``should_stop`` at its last batch (e.g. a
    Lightning time or step limit) handles its last step in ``on_train_end``. It fires on every rank; a subclass
    whose work is rank 0's alone checks ``trainer.is_global_zero``.
    """

    def __init__(self, every_n_g_steps: int) -> None:
        at_least(f"{type(self).__name__}.every_n_g_steps", every_n_g_steps, 1)
        self.every = every_n_g_steps
        self.last_step = 0  # the last G step handled

    def on_g_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The callback's work at a due G step (``pl_module.g_step``)."""
        raise NotImplementedError

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.last_step = int(pl_module.g_step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = int(pl_module.g_step)
        if step > self.last_step and (step % self.every == 0 or trainer.should_stop):
            self._handle(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if int(pl_module.g_step) > self.last_step:
            self._handle(trainer, pl_module)

    def _handle(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.last_step = int(pl_module.g_step)
        self.on_g_step(trainer, pl_module)
