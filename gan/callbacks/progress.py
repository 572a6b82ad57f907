"""A progress bar counted in G steps out of ``max_g_steps``, showing the last logged losses (the training stream
is endless and ``training_step`` consumes ``n_dis`` batches, so Lightning's own bar counts neither)."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

from gan.training.module import GAN


class GStepProgressBar(TQDMProgressBar):
    @property
    def total_train_batches(self) -> int:
        return int(self.trainer.lightning_module.hparams.max_g_steps)

    def on_train_epoch_start(self, trainer: pl.Trainer, *args) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description("G steps")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: GAN, *args) -> None:
        bar, n = self.train_progress_bar, pl_module.g_step
        if n % self.refresh_rate == 0 or n >= bar.total:
            bar.n = n
            keys = ("loss/d", "loss/g", "speed/g_steps_per_s")
            bar.set_postfix({k.split("/")[-1]: f"{pl_module.last_metrics[k]:.3g}" for k in keys
                             if k in pl_module.last_metrics}, refresh=False)
            bar.refresh()
