"""``gan bench step``: the cost of one SNGAN iteration (n_dis D steps + 1 G step).

Default: the GAN LightningModule under a Lightning Trainer vs a plain PyTorch loop over copies of the same models
and the same data, in one run; the Lightning loop should cost <= 1.10x the plain loop.
``--table``: generator steps/s of the CIFAR-10 CNN and ResNet configs (paper widths) for each D normalization.
Synthetic data (in memory), so the numbers are compute only.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import time

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from gan.bench import device_description, synchronize
from gan.data import GANDataModule
from gan.layers.norms import NORMS
from gan.markdown import markdown_table
from gan.module import GAN

LIMIT = 1.10


class _StepClock(pl.Callback):
    """Wall time at the end of every training_step (= every G step)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, *args) -> None:
        synchronize()
        self.times.append(time.perf_counter())


def lightning_seconds(model: GAN, data: GANDataModule, steps: int, warmup: int) -> float:
    """Median seconds per G step of ``model`` trained by a Lightning Trainer (loop overhead included)."""
    model.hparams.max_g_steps = warmup + steps + 1
    clock = _StepClock()
    trainer = pl.Trainer(
        accelerator="auto", devices=1, max_epochs=-1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False, callbacks=[clock],
    )
    trainer.fit(model, datamodule=data)
    return statistics.median([b - a for a, b in zip(clock.times[warmup:], clock.times[warmup + 1 :])])


def plain_seconds(model: GAN, data: GANDataModule, steps: int, warmup: int) -> float:
    """Median seconds per G step of the same computation written as a plain PyTorch loop."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    h = model.hparams
    g, d = copy.deepcopy(model.generator).to(device), copy.deepcopy(model.discriminator).to(device)
    betas = tuple(float(b) for b in h.betas)
    opt_g = torch.optim.Adam(g.parameters(), lr=h.lr_g, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=h.lr_d, betas=betas)
    loader = DataLoader(data.dataset, batch_size=data.hparams.batch_size, shuffle=True, drop_last=True)
    batches = itertools.cycle(loader)
    times = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        for _ in range(h.n_dis):
            real = next(batches)[0].to(device)
            with torch.no_grad():
                fake = g(torch.randn(real.shape[0], h.z_dim, device=device))
            d_real, d_fake = d(torch.cat([real, fake])).split(real.shape[0])
            loss = model.d_loss_fn(d_real, d_fake)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        d.requires_grad_(False)
        loss = model.g_loss_fn(d(g(torch.randn(h.g_batch_size or real.shape[0], h.z_dim, device=device))))
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        d.requires_grad_(True)
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def _setup(args: argparse.Namespace, arch: str, norm: str, width: int | None) -> tuple[GAN, GANDataModule]:
    torch.manual_seed(0)
    model = GAN(arch, args.image_size, args.channels, g_width=width, d_width=width, norm=norm, n_dis=args.n_dis,
                log_every_n_g_steps=10**9)
    n = args.batch_size * args.n_dis * 4
    data = GANDataModule("synthetic", image_size=args.image_size, channels=args.channels,
                         batch_size=args.batch_size, num_workers=0, num_samples=n)
    data.setup()
    return model, data


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
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--table", action="store_true", help="G-steps/s of cnn and resnet x every norm")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    protocol = (f"{device_description()}; batch {args.batch_size}, n_dis {args.n_dis}, "
                f"{args.image_size}x{args.image_size}x{args.channels} synthetic data; median of {args.steps} G steps "
                f"after {args.warmup} warm-up")
    if args.table:
        rows = []
        for arch in ("cnn", "resnet"):
            row = [arch]
            for norm in NORMS:
                model, data = _setup(args, arch, norm, args.width)
                row.append(f"{1.0 / lightning_seconds(model, data, args.steps, args.warmup):.3f}")
                print(f"{arch} {norm}: {row[-1]} G-steps/s", flush=True)
            rows.append(row)
        print(f"\nG-steps/s in the LightningModule ({protocol})\n")
        print(markdown_table(["arch", *NORMS], rows))
        return 0
    model, data = _setup(args, args.arch, args.norm, args.width)
    plain = plain_seconds(model, data, args.steps, args.warmup)
    light = lightning_seconds(model, data, args.steps, args.warmup)
    ratio = light / plain
    print(f"\n{args.arch} / {args.norm}, one G step + {args.n_dis} D steps ({protocol})\n")
    print(markdown_table(
        ["loop", "s / G step", "G-steps/s"],
        [["plain PyTorch", f"{plain:.4f}", f"{1 / plain:.3f}"],
         ["LightningModule", f"{light:.4f}", f"{1 / light:.3f}"]],
    ))
    verdict = "OK" if ratio <= LIMIT else "OVER"
    print(f"\nLightning / plain = {ratio:.3f}x (limit {LIMIT:.2f}x): {verdict}")
    return 0 if ratio <= LIMIT else 1
