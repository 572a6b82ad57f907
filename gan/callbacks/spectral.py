"""Per-layer spectral norms of the discriminator during training: the quantity ConvNorm's paper says it lowers.

Exact circular spectral norms (``gan.layers.spectrum``) of every conv of D (plain, SN or ConvNorm, its affine kernel
included) and the largest singular value of every linear layer and of a projection D's class embedding, logged
against the generator step as ``spectral/<layer>``, appended to ``<run>/spectral_norms.jsonl`` and drawn in
``<run>/spectral_norms.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from gan.callbacks.schedule import GStepCallback
from gan.layers.convnorm import ConvNorm2d
from gan.layers.spectrum import layer_spectral_norms
from gan.runs.layout import SPECTRAL_LOG, append_jsonl
from gan.training.loggers import send_metrics
from gan.training.module import GAN
from gan.utils.modes import eval_mode
from gan.utils.plots import png_figure


def conv_input_sizes(model: nn.Module, example: torch.Tensor, labels: torch.Tensor | None = None
                     ) -> dict[str, tuple[int, int]]:
    """Spatial input size of every conv in ``model`` for ``example`` (with ``labels`` for a conditional D), found
    by one side-effect-free forward."""
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str):
        def hook(_: nn.Module, args: tuple) -> None:
            sizes.setdefault(name, tuple(args[0].shape[-2:]))

        return hook

    hooks = [
        layer.register_forward_pre_hook(record(name))
        for name, layer in model.named_modules()
        if isinstance(layer, (nn.Conv2d, ConvNorm2d))
    ]
    try:
        with eval_mode(model), torch.no_grad():  # no ConvNorm EMA step, no spectral-norm power iteration
            model(example) if labels is None else model(example, labels)
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def spectral_norms(model: nn.Module, input_sizes: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Conv layers' exact spectral norms and the largest singular values of linear layers and embeddings (a
    projection D's), by layer name."""
    norms = layer_spectral_norms(model, input_sizes)
    for name, layer in model.named_modules():
        if isinstance(layer, nn.Linear | nn.Embedding):
            norms[name] = torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item()
    return norms


class SpectralNormMonitor(GStepCallback):
    """Every ``every_n_g_steps`` generator steps (rank 0), measure and log D's per-layer spectral norms.

    Files go to ``dirpath`` (default: the trainer's root directory, i.e. the run folder under ``gan fit``).
    """

    def __init__(self, every_n_g_steps: int = 1000, dirpath: str | Path | None = None) -> None:
        super().__init__(every_n_g_steps)
        self.dirpath = dirpath
        self.sizes: dict[str, tuple[int, int]] = {}
        self.history: list[dict] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        example = torch.zeros(
            1, pl_module.channels, pl_module.image_size, pl_module.image_size, device=pl_module.device
        )
        labels = None if pl_module.num_classes is None else torch.zeros(1, dtype=torch.long, device=pl_module.device)
        self.sizes = conv_input_sizes(pl_module.discriminator, example, labels)

    def on_g_step(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        if trainer.is_global_zero:
            self.measure(trainer, pl_module)

    def measure(self, trainer: pl.Trainer, pl_module: GAN) -> dict[str, float]:
        step = pl_module.g_step
        with eval_mode(pl_module.discriminator) as model:  # no power-iteration step; ConvNorm with its current V
            norms = spectral_norms(model, self.sizes)
        self.history.append({"g_step": step, **norms})
        send_metrics(trainer.loggers, {"g_step": step, **{f"spectral/{k}": v for k, v in norms.items()}}, step)
        append_jsonl(self.root(trainer) / SPECTRAL_LOG, self.history[-1])
        return norms

    def on_train_end(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        super().on_train_end(trainer, pl_module)
        if trainer.is_global_zero and self.history:
            plot_history(self.history, self.root(trainer) / "spectral_norms.png")

    def root(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or trainer.default_root_dir)


def plot_history(history: list[dict], path: Path) -> Path:
    """One line per layer: spectral norm against generator step."""
    with png_figure(path, size=(7, 4), legend_size=6, legend_columns=2) as ax:
        steps = [row["g_step"] for row in history]
        for layer in (k for k in history[0] if k != "g_step"):
            ax.plot(steps, [row[layer] for row in history], marker="o", ms=3, label=layer)
        ax.set(xlabel="generator step", ylabel="spectral norm (exact, circular)", yscale="log", title="D layers")
    return path
