"""Per-layer spectral norms of the discriminator during training: the quantity ConvNorm's paper says it lowers.

Exact circular spectral norms (``gan.layers.spectrum``) of every conv of D (plain, SN or ConvNorm, its affine kernel
included) and the largest singular value of every linear layer, logged against the generator step as
``spectral/<layer>``, appended to ``<run>/spectral_norms.jsonl`` and drawn in ``<run>/spectral_norms.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from gan.layers.convnorm import ConvNorm2d
from gan.layers.spectrum import layer_spectral_norms
from gan.module import GAN
from gan.validate import at_least


def conv_input_sizes(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Spatial input size of every conv in ``model`` for ``example``, found by one side-effect-free forward."""
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
    was_training = model.training
    try:
        model.eval()  # eval: ConvNorm does not advance its EMA, spectral norm does not run its power iteration
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return sizes


def spectral_norms(model: nn.Module, input_sizes: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Conv layers' exact spectral norms and linear layers' largest singular values, by layer name."""
    norms = layer_spectral_norms(model, input_sizes)
    for name, layer in model.named_modules():
        if isinstance(layer, nn.Linear):
            norms[name] = torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item()
    return norms


class SpectralNormMonitor(pl.Callback):
    """Every ``every_n_g_steps`` generator steps (rank 0), measure and log D's per-layer spectral norms.

    Files go to ``dirpath`` (default: the trainer's root directory, i.e. the run folder under ``gan fit``).
    """

    def __init__(self, every_n_g_steps: int = 1000, dirpath: str | Path | None = None) -> None:
        at_least("SpectralNormMonitor.every_n_g_steps", every_n_g_steps, 1)
        self.every, self.dirpath = every_n_g_steps, dirpath
        self.sizes: dict[str, tuple[int, int]] = {}
        self.history: list[dict] = []
        self._measured = -1

    def on_fit_start(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        example = torch.zeros(
            1, pl_module.channels, pl_module.image_size, pl_module.image_size, device=pl_module.device
        )
        self.sizes = conv_input_sizes(pl_module.discriminator, example)

    def measure(self, trainer: pl.Trainer, pl_module: GAN) -> dict[str, float]:
        step, model = pl_module.g_step, pl_module.discriminator
        was_training = model.training
        model.eval()  # no power-iteration step for spectral norm; ConvNorm is measured with its current V
        try:
            norms = spectral_norms(model, self.sizes)
        finally:
            model.train(was_training)
        self._measured = step
        self.history.append({"g_step": step, **norms})
        for logger in trainer.loggers:
            logger.log_metrics({"g_step": step, **{f"spectral/{k}": v for k, v in norms.items()}}, step=step)
        root = self.root(trainer)
        root.mkdir(parents=True, exist_ok=True)
        with open(root / "spectral_norms.jsonl", "a") as f:
            f.write(json.dumps(self.history[-1]) + "\n")
        return norms

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: GAN, *args) -> None:
        if trainer.is_global_zero and pl_module.g_step % self.every == 0 and pl_module.g_step != self._measured:
            self.measure(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: GAN) -> None:
        if not trainer.is_global_zero:
            return
        if pl_module.g_step != self._measured:
            self.measure(trainer, pl_module)
        plot_history(self.history, self.root(trainer) / "spectral_norms.png")

    def root(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or trainer.default_root_dir)


def plot_history(history: list[dict], path: Path) -> Path:
    """One line per layer: spectral norm against generator step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [row["g_step"] for row in history]
    for layer in (k for k in history[0] if k != "g_step"):
        ax.plot(steps, [row[layer] for row in history], marker="o", ms=3, label=layer)
    ax.set(xlabel="generator step", ylabel="spectral norm (exact, circular)", yscale="log", title="D layers")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
