"""D's empirical Lipschitz behaviour during training: how steep D is around real and generated images.

Every ``every_n_g_steps`` G steps (rank 0) the monitor measures ||grad_x D(x)||_2 for each of a fixed set of real
images and of images from fixed latents, and logs the mean and max of each as ``grad/real_mean``,
``grad/real_max``, ``grad/fake_mean``, ``grad/fake_max`` against the G step (and appends them to
``<run>/gradient_norms.jsonl``). A 1-Lipschitz D (what spectral normalization bounds and ConvNorm's paper
argues for) has every value <= 1 in the image's [-1, 1] units.

It works on a copy of D in train mode, so it measures the operator training uses (ConvNorm with V of the current
weights) while leaving training bit-identical: no EMA advance, power iteration or BatchNorm statistic of the
real D moves, and no random stream of the run is touched (images and latents come from the monitor's own seed).
Per-image gradients come from one backward of the summed outputs, exact for every D whose samples do not
interact; with ConvNorm's ``bn`` variant D's batch statistics couple them, and the images are scored as one
real+fake batch, as the D step does.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from gan.callbacks.schedule import GStepCallback
from gan.data import item_image, item_label
from gan.runs.layout import GRADIENT_LOG, append_jsonl
from gan.training.loggers import send_metrics
from gan.training.module import GAN
from gan.utils.validate import at_least


def input_gradient_norms(discriminator: nn.Module, images: Tensor, labels: Tensor | None = None) -> Tensor:
    """||d D(x_i) / d x_i||_2 for every image (one backward of the summed outputs; ``labels`` for a conditional
    D)."""
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = discriminator(x) if labels is None else discriminator(x, labels)
        (grad,) = torch.autograd.grad(logits.sum(), x)
    return grad.flatten(1).norm(dim=1)


class GradientNormMonitor(GStepCallback):
    """Every ``every_n_g_steps`` G steps, the norm of D's input gradient on ``num_images`` real and fake images.

    The real images are a fixed random subset of the training dataset, the fakes come from fixed latents through
    the (non-EMA) generator in eval mode: both drawn from ``seed`` alone, the same at every measurement. A
    conditional D scores the real images with their labels and the fakes with the labels they were made for
    (drawn uniformly from ``seed``, after the latents).
    """

    def __init__(self, every_n_g_steps: int = 1000, num_images: int = 64, seed: int = 0,
                 dirpath: str | Path | None = None) -> None:
        super().__init__(every_n_g_steps)
        at_least("GradientNormMonitor.num_images", num_images, 1)
        self.num, self.seed, self.dirpath = num_images, seed, dirpath
        self.real: Tensor | None = None
        self.real_labels: Tensor | None = None
        self.history: list[dict] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        dataset = trainer.datamodule.dataset
        picked = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.seed))[: self.num]
        items = [dataset[int(i)] for i in picked]
        self.real = torch.stack([item_image(item) for item in items])
        if pl_module.num_classes is not None:
            self.real_labels = torch.tensor([int(item_label(item)) for item in items])

    def on_g_step(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        if trainer.is_global_zero:
            self.measure(trainer, pl_module)

    def measure(self, trainer: pl.Trainer, pl_module: GAN) -> dict[str, float]:
        real = self.real.to(pl_module.device)
        noise = torch.Generator().manual_seed(self.seed)
        z = pl_module.sample_z(len(real), noise)
        fake_y = pl_module.sample_labels(len(real), noise)
        real_y = None if self.real_labels is None else self.real_labels.to(pl_module.device)
        fake = pl_module.generate(z, fake_y, ema=False)
        d = copy.deepcopy(pl_module.discriminator).train()
        if pl_module.d_has_batch_stats:  # batch statistics: score real and fake together, as in the D step
            labels = None if real_y is None else torch.cat([real_y, fake_y])
            grads = input_gradient_norms(d, torch.cat([real, fake]), labels).split([len(real), len(fake)])
        else:
            grads = input_gradient_norms(d, real, real_y), input_gradient_norms(d, fake, fake_y)
        row = {"g_step": pl_module.g_step}
        for kind, norms in zip(("real", "fake"), grads):
            row[f"grad/{kind}_mean"], row[f"grad/{kind}_max"] = norms.mean().item(), norms.max().item()
        self.history.append(row)
        send_metrics(trainer.loggers, row, pl_module.g_step)
        append_jsonl(Path(self.dirpath or trainer.default_root_dir) / GRADIENT_LOG, row)
        return row
