"""Checkpoints on the G-step schedule (Lightning's ModelCheckpoint counts optimizer steps, n_dis + 1 per G step)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from gan.callbacks.schedule import GStepCallback
from gan.runs.layout import LAST_CHECKPOINT, step_file
from gan.training.module import GAN


class GStepCheckpoint(GStepCallback):
    """Saves ``dirpath/g<g_step>.ckpt`` every ``every_n_g_steps`` G steps and ``dirpath/last.ckpt`` then and whenever
    training stops (the final step, or a signal: gan.callbacks.interrupt). Each file is written atomically (under
    ``gan fit``: ``gan.runs.checkpoints.SafeCheckpointIO``, a temp file beside the target), so an interrupted save never
    corrupts an older one."""

    def __init__(self, dirpath: str | Path, every_n_g_steps: int = 5000) -> None:
        super().__init__(every_n_g_steps)
        self.dirpath = Path(dirpath)

    def on_g_step(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        step = pl_module.g_step
        if step % self.every == 0:
            # the full state: resumable
            trainer.save_checkpoint(self.dirpath / step_file(step, ".ckpt"), weights_only=False)
        trainer.save_checkpoint(self.last_path, weights_only=False)

    @property
    def last_path(self) -> Path:
        return self.dirpath / LAST_CHECKPOINT
