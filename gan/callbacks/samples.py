"""Fixed-z sample grids during training: the same latents every time (and across runs with the same seed), so
grids of one run show progress and grids of different runs compare directly."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import save_image

from gan.callbacks.schedule import GStepCallback
from gan.runs.layout import step_file
from gan.training.module import GAN
from gan.utils.files import atomic_write


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Write images in [-1, 1] as one PNG grid of ``nrow`` images per row (default: square-ish; parents created),
    atomically and never through a symlink planted at ``path`` (the link itself is replaced)."""
    path = Path(path)
    nrow = nrow or math.ceil(math.sqrt(len(images)))
    png = io.BytesIO()
    save_image(images.float().cpu(), png, format="png", nrow=nrow, normalize=True, value_range=(-1, 1))
    atomic_write(path, png.getvalue())
    return path


def class_grid_inputs(module: GAN, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and labels of a class grid: row k is class k, every row the same ``per_class`` latents (so rows
    differ by class alone); drawn from ``seed``."""
    z = module.sample_z(per_class, torch.Generator().manual_seed(seed))
    classes = torch.arange(module.num_classes, device=z.device)
    return z.repeat(module.num_classes, 1), classes.repeat_interleave(per_class)


class SampleGrid(GStepCallback):
    """Writes ``dirpath/g<g_step>.png`` from ``num`` fixed latents every ``every_n_g_steps`` G steps and at the end
    (EMA generator when there is one). A conditional GAN's grid has one row per class, each row the same
    ``ceil(num / num_classes)`` latents."""

    def __init__(self, dirpath: str | Path, every_n_g_steps: int = 1000, num: int = 64, seed: int = 0) -> None:
        super().__init__(every_n_g_steps)
        self.dirpath, self.num, self.seed = Path(dirpath), num, seed
        self.last_path: Path | None = None

    @rank_zero_only
    def write(self, module: GAN) -> Path:
        path = self.dirpath / step_file(module.g_step, ".png")
        if module.num_classes is None:
            z = module.sample_z(self.num, torch.Generator().manual_seed(self.seed))
            self.last_path = save_grid(module.generate(z), path)
        else:
            per_class = math.ceil(self.num / module.num_classes)
            self.last_path = save_grid(module.generate(*class_grid_inputs(module, per_class, self.seed)), path,
                                       nrow=per_class)
        return self.last_path

    def on_g_step(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        self.write(pl_module)
