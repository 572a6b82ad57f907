"""``gan bench step``: the cost of one SNGAN iteration (n_dis D steps + 1 G step).

Default: the GAN LightningModule under a Lightning Trainer vs a plain PyTorch loop doing the same work on copies
of the same models and data, interleaved step by step in one run (after every Lightning G step, one plain G step
runs), so that load from other processes hits both alike; the Lightning loop should cost <= 1.05x the plain loop.
``--num-classes N`` adds the cost of conditioning: a plain loop over a class-conditional copy (N classes) interleaved
with the other two, so conditional and unconditional G-steps/s stand side by side in one run.
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
from torch import Tensor
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from gan.bench import device_description, synchronize
from gan.layers.norms import NORMS
from gan.models import ARCHS
from gan.training.cuda_graphs import set_learning_rate
from gan.training.module import GAN, latent_seed
from gan.training.steps import SNGANSteps
from gan.utils.markdown import markdown_table

LIMIT = 1.05


def random_images(batch_size: int, image_size: int, channels: int, num_classes: int | None = None,
                  batches: int = 8) -> DataLoader:
    """An endless loader of random images in [-1, 1] held in memory, with random labels when ``num_classes`` is set
    (sampling with replacement never runs out)."""
    seed = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size * batches, channels, image_size, image_size, generator=seed) * 2 - 1
    labels = () if num_classes is None else (torch.randint(num_classes, (len(images),), generator=seed),)
    dataset = TensorDataset(images, *labels)
    sampler = RandomSampler(dataset, replacement=True, num_samples=2**62, generator=torch.Generator().manual_seed(0))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                      pin_memory=torch.cuda.is_available())


class PlainLoop:
    """The module's SNGAN iteration as a plain PyTorch loop over copies of its G and D: the module's own step
    functions (:class:`SNGANSteps`), learning-rate decay and latent stream, with plain Adam and ``backward``, D steps
    on fresh batches and the same autocast as ``precision``. ``model`` draws the latents, so it must sit on the
    device the loop runs on by the time :meth:`step` runs."""

    def __init__(self, model: GAN, loader: DataLoader, precision: str = "32-true") -> None:
        self.model, h = model, model.hparams
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        g = copy.deepcopy(model.generator).to(self.device)
        d = copy.deepcopy(model.discriminator).to(self.device)
        self.steps = SNGANSteps(g, d, model.d_loss_fn, model.g_loss_fn, model.num_classes is not None)
        betas = tuple(float(b) for b in h.betas)
        self.steps.opt_g = torch.optim.Adam(g.parameters(), lr=h.lr_g, betas=betas)
        self.steps.opt_d = torch.optim.Adam(d.parameters(), lr=h.lr_d, betas=betas)
        self.batches = iter(loader)
        self.noise = torch.Generator()
        self.autocast = precision.startswith("bf16")
        self.g_steps = 0

    def _next_real(self) -> tuple[Tensor, ...]:
        """The next real batch on the device, with its labels for a conditional model."""
        batch = next(self.batches)
        return tuple(t.to(self.device, non_blocking=True) for t in batch[:2 if self.steps.conditional else 1])

    def step(self) -> None:
        model, h, steps = self.model, self.model.hparams, self.steps
        factor = model.learning_rate_factor(self.g_steps)
        for opt, lr in ((steps.opt_g, h.lr_g), (steps.opt_d, h.lr_d)):
            set_learning_rate(opt, lr * factor)
        self.noise.manual_seed(latent_seed(h.seed, 0, self.g_steps))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            for _ in range(h.n_dis):
                reals = self._next_real()
                steps.discriminator_step(*reals, *model.draw_fakes(reals[0].shape[0], self.noise))
            steps.generator_step(*reals, *model.draw_fakes(h.g_batch_size or reals[0].shape[0], self.noise))
        self.g_steps += 1


class StepTimer(pl.Callback):
    """Seconds of every Lightning G step (loop overhead included); with ``between``, named functions run after each
    Lightning step, each timed on its own, outside the Lightning steps' times."""

    def __init__(self, between: dict[str, Callable[[], None]] | None = None) -> None:
        self.between = between or {}
        self.lightning: list[float] = []
        self.other: dict[str, list[float]] = {name: [] for name in self.between}
        self._mark: float | None = None

    def on_train_start(self, *args) -> None:
        synchronize()
        self._mark = time.perf_counter()

    def on_train_batch_end(self, *args) -> None:
        synchronize()
        now = time.perf_counter()
        self.lightning.append(now - self._mark)
        for name, fn in self.between.items():
            fn()
            synchronize()
            end = time.perf_counter()
            self.other[name].append(end - now)
            now = end
        self._mark = time.perf_counter()


class StepHook(pl.Callback):
    """A callback with an (empty) optimizer-step hook: the module then steps through Lightning's wrappers
    (``manual_backward``, ``LightningOptimizer.step``), as it must whenever a callback implements such a hook."""

    def on_before_optimizer_step(self, *args) -> None:
        pass


def fit_timed(model: GAN, loader: DataLoader, g_steps: int, precision: str = "32-true",
              between: dict[str, Callable[[], None]] | None = None, wrappers: bool = False) -> StepTimer:
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
                       wrappers: bool = False, others: dict[str, PlainLoop] | None = None) -> dict[str, float]:
    """Median seconds per G step of the LightningModule (``lightning``), the plain loop over its copies (``plain``)
    and each of ``others``, all interleaved step by step."""
    loops = {"plain": PlainLoop(model, loader, precision), **(others or {})}
    timer = fit_timed(model, loader, warmup + steps, precision, wrappers=wrappers,
                      between={name: loop.step for name, loop in loops.items()})
    times = {name: statistics.median(seconds[warmup:]) for name, seconds in timer.other.items()}
    return {"lightning": statistics.median(timer.lightning[warmup:]), **times}


def build_model(arch: str, norm: str, width: int | None, image_size: int, channels: int, n_dis: int,
                **overrides) -> GAN:
    torch.manual_seed(0)
    return GAN(arch, image_size, channels, g_width=width, d_width=width, norm=norm, n_dis=n_dis,
               log_every_n_g_steps=10**9, **overrides)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gan bench step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="cnn", choices=ARCHS)
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
    parser.add_argument("--num-classes", type=int, default=None,
                        help="also time a class-conditional copy with this many classes (the cost of conditioning)")
    parser.add_argument("--table", action="store_true", help="G-steps/s of every architecture x every norm")
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
        for arch in ARCHS:
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
    others = {}
    if args.num_classes is not None:
        conditional = build_model(args.arch, args.norm, args.width, args.image_size, args.channels, args.n_dis,
                                  num_classes=args.num_classes).to(torch.device("cuda" if torch.cuda.is_available()
                                                                                else "cpu"))
        loader_y = random_images(args.batch_size, args.image_size, args.channels, args.num_classes)
        others["conditional"] = PlainLoop(conditional, loader_y, args.precision)
    times = lightning_vs_plain(model, loader, args.steps, args.warmup, args.precision, args.lightning_wrappers, others)
    names = {"plain": "plain PyTorch", "conditional": f"plain PyTorch, {args.num_classes} classes",
             "lightning": "LightningModule"}
    steps = "Lightning's step wrappers" if args.lightning_wrappers else "direct steps"
    print(f"\n{args.arch} / {args.norm}, one G step + {args.n_dis} D steps, interleaved, {steps} ({protocol})\n")
    print(markdown_table(["loop", "s / G step", "G-steps/s"],
                         [[names[name], f"{t:.4f}", f"{1 / t:.3f}"] for name, t in times.items()]))
    if "conditional" in times:
        print(f"\nconditional / unconditional (plain loops) = {times['conditional'] / times['plain']:.3f}x "
              "the seconds per G step: the cost of conditioning")
    ratio = times["lightning"] / times["plain"]
    verdict = "OK" if ratio <= LIMIT else "OVER"
    print(f"\nLightning / plain = {ratio:.3f}x (limit {LIMIT:.2f}x): {verdict}")
    return 0 if ratio <= LIMIT else 1
