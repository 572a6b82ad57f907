"""``gan bench step``: the cost of one SNGAN iteration (n_dis D steps + 1 G step).

Default: the GAN LightningModule under a Lightning Trainer vs a plain PyTorch loop doing the same work on copies
of the same models and data, interleaved step by step in one run (after every Lightning G step, one plain G step
runs), so that load from other processes hits both alike; the Lightning loop should cost <= 1.05x the plain loop.
``--table``: generator steps/s of the CIFAR-10 CNN and ResNet configs (paper widths) for each D normalization.
Random images held in memory, so the numbers are compute and loop overhead only.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from gan.bench import device_description, synchronize
from gan.layers.norms import NORMS
from gan.training.module import GAN, latent_seed
from gan.utils.markdown import markdown_table

LIMIT = 1.05


def random_images(batch_size: int, image_size: int, channels: int, batches: int = 8) -> DataLoader:
    """An endless loader of random images in [-1, 1] held in memory (sampling with replacement never runs out)."""
    seed = torch.Generator().manual_seed(0)
    dataset = TensorDataset(torch.rand(batch_size * batches, channels, image_size, image_size, generator=seed) * 2 - 1)
    sampler = RandomSampler(dataset, replacement=True, num_samples=2**62, generator=torch.Generator().manual_seed(0))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                      pin_memory=torch.cuda.is_available())


class PlainLoop:
    """The LightningModule's training step written as a plain PyTorch loop over copies of its G and D: the same
    learning-rate decay, latent stream (pinned for a GPU), D steps on fresh batches, G step with D frozen, and
    the same autocast as ``precision``."""

    def __init__(self, model: GAN, loader: DataLoader, precision: str = "32-true") -> None:
        self.h = h = model.hparams
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.g = copy.deepcopy(model.generator).to(self.device)
        self.d = copy.deepcopy(model.discriminator).to(self.device)
        betas = tuple(float(b) for b in h.betas)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=h.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=h.lr_d, betas=betas)
        self.d_loss, self.g_loss = model.d_loss_fn, model.g_loss_fn
        self.batch_stats = model._d_batch_stats
        self.batches = iter(loader)
        self.noise = torch.Generator()
        self.autocast = precision.startswith("bf16")
        self.steps = 0

    def _z(self, n: int) -> torch.Tensor:
        pin = self.device.type == "cuda"
        return torch.randn(n, self.h.z_dim, generator=self.noise, pin_memory=pin).to(self.device, non_blocking=True)

    def step(self) -> None:
        h = self.h
        factor = 1.0 - self.steps / h.max_g_steps if h.lr_decay else 1.0
        for opt, lr in ((self.opt_g, h.lr_g), (self.opt_d, h.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * factor
        self.noise.manual_seed(latent_seed(h.seed, 0, self.steps))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            for _ in range(h.n_dis):
                real = next(self.batches)[0].to(self.device, non_blocking=True)
                z = self._z(real.shape[0])
                with torch.no_grad():
                    fake = self.g(z)
                d_real, d_fake = self.d(torch.cat([real, fake])).split([real.shape[0], fake.shape[0]])
                loss = self.d_loss(d_real, d_fake)
                self.opt_d.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_d.step()
            self.d.requires_grad_(False)
            fake = self.g(self._z(h.g_batch_size or real.shape[0]))
            logits = self.d(torch.cat([real, fake]))[real.shape[0]:] if self.batch_stats else self.d(fake)
            loss = self.g_loss(logits)
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()
            self.d.requires_grad_(True)
        self.steps += 1


class StepTimer(pl.Callback):
    """Seconds of every Lightning G step (loop overhead included); with ``between``, a function run after each
    Lightning step and timed on its own, outside the Lightning steps' times."""

    def __init__(self, between: Callable[[], None] | None = None) -> None:
        self.between = between
        self.lightning: list[float] = []
        self.other: list[float] = []
        self._mark: float | None = None

    def on_train_start(self, *args) -> None:
        synchronize()
        self._mark = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        synchronize()
        now = time.perf_counter()
        self.lightning.append(now - self._mark)
        if self.between is not None:
            self.between()
            synchronize()
            self.other.append(time.perf_counter() - now)
        self._mark = time.perf_counter()


class StepHook(pl.Callback):
    """A callback with an (empty) optimizer-step hook: the module then steps through Lightning's wrappers
    (``manual_backward``, ``LightningOptimizer.step``), as it must whenever a callback implements such a hook."""

    def on_before_optimizer_step(self, *args) -> None:
        pass


def fit_timed(model: GAN, loader: DataLoader, g_steps: int, precision: str = "32-true",
              between: Callable[[], None] | None = None, wrappers: bool = False) -> StepTimer:
    """Train ``model`` for ``g_steps`` G steps under a Lightning Trainer (one device, no logger or checkpoints);
    ``wrappers``: force Lightning's step wrappers (see :class:`StepHook`)."""
    model.hparams.max_g_steps = g_steps
    timer = StepTimer(between)
    trainer = pl.Trainer(
        accelerator="auto", devices=1, max_epochs=-1, max_steps=-1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
        callbacks=[timer, *([StepHook()] if wrappers else [])], precision=precision,
    )
    trainer.fit(model, train_dataloaders=loader)
    return timer


def lightning_seconds(model: GAN, loader: DataLoader, steps: int, warmup: int, precision: str = "32-true") -> float:
    """Median seconds per G step of ``model`` trained by a Lightning Trainer (loop overhead included)."""
    return statistics.median(fit_timed(model, loader, warmup + steps, precision).lightning[warmup:])


def lightning_vs_plain(model: GAN, loader: DataLoader, steps: int, warmup: int, precision: str = "32-true",
                       wrappers: bool = False) -> tuple[float, float]:
    """Median seconds per G step (Lightning, plain loop), the two interleaved step by step."""
    plain = PlainLoop(model, loader, precision)
    timer = fit_timed(model, loader, warmup + steps, precision, between=plain.step, wrappers=wrappers)
    return statistics.median(timer.lightning[warmup:]), statistics.median(timer.other[warmup:])


def build_model(arch: str, norm: str, width: int | None, image_size: int, channels: int, n_dis: int,
                **overrides) -> GAN:
    torch.manual_seed(0)
    return GAN(arch, image_size, channels, g_width=width, d_width=width, norm=norm, n_dis=n_dis,
               log_every_n_g_steps=10**9, **overrides)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gan bench step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="cnn", choices=("cnn", "resnet"))
    parser.add_argument("--norm", default="convnorm", choices=NORMS)
    parser.add_argument("--width", type=int, default=None, help="G and D width (default: the paper's)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-dis", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="timed G steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="32-true", help="trainer precision, e.g. 32-true or bf16-mixed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--table", action="store_true", help="G-steps/s of cnn and resnet x every norm")
    parser.add_argument("--lightning-wrappers", action="store_true",
                        help="step through manual_backward / LightningOptimizer.step, as with a callback that has "
                             "a step hook (default: the plain calls the module makes when no hook needs them)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    loader = random_images(args.batch_size, args.image_size, args.channels)
    protocol = (f"{device_description()}; batch {args.batch_size}, n_dis {args.n_dis}, "
                f"{args.image_size}x{args.image_size}x{args.channels} random images in memory, precision "
                f"{args.precision}; median of {args.steps} G steps after {args.warmup} warm-up")
    if args.table:
        rows = []
        for arch in ("cnn", "resnet"):
            row = [arch]
            for norm in NORMS:
                model = build_model(arch, norm, args.width, args.image_size, args.channels, args.n_dis)
                row.append(f"{1.0 / lightning_seconds(model, loader, args.steps, args.warmup, args.precision):.3f}")
                print(f"{arch} {norm}: {row[-1]} G-steps/s", flush=True)
            rows.append(row)
        print(f"\nG-steps/s in the LightningModule ({protocol})\n")
        print(markdown_table(["arch", *NORMS], rows))
        return 0
    model = build_model(args.arch, args.norm, args.width, args.image_size, args.channels, args.n_dis)
    light, plain = lightning_vs_plain(model, loader, args.steps, args.warmup, args.precision,
                                      args.lightning_wrappers)
    ratio = light / plain
    steps = "Lightning's step wrappers" if args.lightning_wrappers else "direct steps"
    print(f"\n{args.arch} / {args.norm}, one G step + {args.n_dis} D steps, interleaved, {steps} ({protocol})\n")
    print(markdown_table(
        ["loop", "s / G step", "G-steps/s"],
        [["plain PyTorch", f"{plain:.4f}", f"{1 / plain:.3f}"],
         ["LightningModule", f"{light:.4f}", f"{1 / light:.3f}"]],
    ))
    verdict = "OK" if ratio <= LIMIT else "OVER"
    print(f"\nLightning / plain = {ratio:.3f}x (limit {LIMIT:.2f}x): {verdict}")
    return 0 if ratio <= LIMIT else 1
