"""The GAN LightningModule: SNGAN training with manual optimization, a D-normalization switch and its own G-step
counter.

One ``training_step`` is one SNGAN iteration: ``n_dis`` discriminator steps, each on a fresh real batch pulled from
``dataloader_iter``, then one generator step. So Lightning's batch index counts G steps, while
``trainer.global_step`` counts every optimizer step (``n_dis + 1`` per iteration): schedules follow ``g_step``.

A checkpoint holds ``g_step`` at the top level and the hparams, so ``GAN.load_from_checkpoint`` rebuilds it. The run
folder ``gan fit`` writes is described in ``gan.runs.layout``.

Conditional models (``num_classes``): D steps score real images with their labels and fakes with labels drawn
uniformly, the G step draws its labels uniformly too; those labels come from the same seeded stream as the latents
(each latent batch, then its labels), so an unconditional run draws exactly what it drew before.

Exact resume: the G-step counter is saved in checkpoints; the latent noise (and fake labels) of step t is drawn from
a generator seeded by (seed, rank, t); the data stream position is saved by ``gan.data.ResumableLoader``; the LR
schedule is a function of ``g_step``; Adam states, EMA weights and ConvNorm/SN buffers are in the state dict.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn

from gan.data import item_image, item_label
from gan.errors import UserError
from gan.models import build_discriminator, build_generator
from gan.runs.checkpoints import load_checkpoint_file
from gan.training.cuda_graphs import set_learning_rate
from gan.training.divergence import EXPLODING_LOSS, DivergedError, LossWatch, nonfinite
from gan.training.execution import Execution, check_compile_mode, check_strategy, check_switches
from gan.training.loggers import send_metrics
from gan.training.losses import get_loss
from gan.training.steps import SNGANSteps
from gan.utils.modes import eval_mode
from gan.utils.validate import at_least, in_range, positive, seed_in_range

DIVERGED_FIX = ("Lower model.lr_d / model.lr_g (or check the data), then resume from the last finite checkpoint "
                "or start a new run.")

def latent_seed(seed: int, rank: int, g_step: int) -> int:
    """The seed of the latent noise drawn by ``rank`` at G step ``g_step``: a fixed hash of the three numbers
    (blake2b, not Python's ``hash``, whose values no version promises to keep), so runs replay across versions."""
    digest = hashlib.blake2b(f"{seed}:{rank}:{g_step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class GAN(pl.LightningModule):
    """SNGAN training loop for an unconditional or a class-conditional GAN.

    Args:
        arch: "cnn" or "resnet"; image_size, channels: the images G makes and D reads.
        num_classes: None for an unconditional GAN; a class count makes it class-conditional (conditional BatchNorm
            in G, a projection D), trained on the dataset's labels.
        z_dim: latent size; g_width, d_width: model widths (None: the architecture's paper width).
        norm: discriminator normalization, none | spectral | convnorm | convnorm+spectral.
        convnorm: the ConvNorm variant for the convnorm kinds, e.g. ``{affine_init: identity, bn: false}``
            (None: ConvNorm2d's defaults, the authors'). With ``bn``, D has batch statistics: the G step then scores
            its fakes inside a real+fake batch, as the D step does, so D normalizes the same kind of batch in both.
        loss: hinge | non-saturating | wasserstein.
        lr_g, lr_d, betas: Adam settings (SNGAN: 2e-4, (0.0, 0.9)).
        n_dis: D steps per G step, each on a fresh real batch.
        g_batch_size: latent batch of the G step (None: the real batch size).
        lr_decay: decay both learning rates linearly to zero over ``max_g_steps``.
        max_g_steps: training stops after exactly this many G steps.
        ema: keep an exponential moving average of G (``generator_ema``) with ``ema_decay``, copying G until
            ``ema_start`` G steps.
        log_every_n_g_steps: how often losses / D outputs / LRs / speed go to the loggers.
        seed: seed of the latent noise stream.
        compile: torch.compile mode for G and D in training (``default``, ``reduce-overhead`` (CUDA graphs),
            ``max-autotune-no-cudagraphs``, ...); None trains eagerly. Samples and evaluations stay eager.
        channels_last: keep G, D and the real batches in channels-last memory (faster convs on recent GPUs).
        cuda_graphs: record the whole D step and G step (forward, backward, Adam) as CUDA graphs after 3 eager
            warm-up steps and replay them (one CUDA device; Adam then runs its device-side ``capturable`` step).
    """

    def __init__(
        self,
        arch: str = "resnet",
        image_size: int = 32,
        channels: int = 3,
        num_classes: int | None = None,
        z_dim: int = 128,
        g_width: int | None = None,
        d_width: int | None = None,
        norm: str = "spectral",
        convnorm: dict[str, Any] | None = None,
        loss: str = "hinge",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        n_dis: int = 5,
        g_batch_size: int | None = None,
        lr_decay: bool = True,
        max_g_steps: int = 100_000,
        ema: bool = False,
        ema_decay: float = 0.9999,
        ema_start: int = 0,
        log_every_n_g_steps: int = 50,
        seed: int = 0,
        compile: str | None = None,
        channels_last: bool = False,
        cuda_graphs: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("image_size", image_size), ("channels", channels), ("z_dim", z_dim), ("g_width", g_width),
                            ("d_width", d_width), ("n_dis", n_dis), ("g_batch_size", g_batch_size),
                            ("max_g_steps", max_g_steps), ("log_every_n_g_steps", log_every_n_g_steps)):
            at_least(f"model.{name}", value, 1)
        at_least("model.ema_start", ema_start, 0)
        positive("model.lr_g", lr_g)
        positive("model.lr_d", lr_d)
        for i, beta in enumerate(betas):
            in_range(f"model.betas[{i}]", beta, 0.0, 1.0, high_open=True)
        in_range("model.ema_decay", ema_decay, 0.0, 1.0)
        seed_in_range("model.seed", seed)  # it seeds the sample grids' generator
        check_compile_mode(compile)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.z_dim, self.image_size, self.channels, self.num_classes = z_dim, image_size, channels, num_classes
        self.generator = build_generator(arch, image_size, channels, z_dim, g_width, num_classes)
        self.discriminator = build_discriminator(arch, image_size, channels, norm, d_width, convnorm, num_classes)
        self.generator_ema: nn.Module | None = None
        if ema:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.d_loss_fn, self.g_loss_fn = get_loss(loss)
        self.steps = SNGANSteps(self.generator, self.discriminator, self.d_loss_fn, self.g_loss_fn,
                                num_classes is not None)
        self.execution = Execution(self.steps, compile, cuda_graphs)
        self._g_step = 0
        self._noise = torch.Generator()
        self._clock: tuple[int, float] | None = None
        self._losses = LossWatch()
        self.last_metrics: dict[str, float] = {}

    # ---- public helpers ---------------------------------------------------------------------------------------
    @property
    def g_step(self) -> int:
        """Generator steps taken so far (saved in checkpoints, restored on resume)."""
        return self._g_step

    @property
    def d_has_batch_stats(self) -> bool:
        """Whether D normalizes with batch statistics, so that fakes are scored beside reals wherever D scores."""
        return self.steps.d_batch_stats

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n latent vectors on the module's device (drawn on ``generator``'s device when one is given).

        Noise drawn on the CPU for a GPU goes through pinned memory: a plain copy would wait for the GPU to finish
        all queued work (a host sync on every D and G step); the numbers are the same.
        """
        device = generator.device if generator is not None else self.device
        pin = device.type == "cpu" and self.device.type == "cuda"
        z = torch.randn(n, self.z_dim, generator=generator, device=device, pin_memory=pin)
        return z.to(self.device, non_blocking=True)

    def sample_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        """n class labels drawn uniformly (on ``generator``, as :meth:`sample_z`); None for an unconditional GAN."""
        if self.num_classes is None:
            return None
        device = generator.device if generator is not None else self.device
        return torch.randint(self.num_classes, (n,), generator=generator, device=device).to(self.device)

    @torch.no_grad()
    def generate(self, z: Tensor, y: Tensor | None = None, ema: bool = True) -> Tensor:
        """Images in [-1, 1] from latents ``z`` (and class labels ``y`` for a conditional GAN): the EMA generator
        when there is one and ``ema``, in eval mode."""
        g = self.generator_ema if (ema and self.generator_ema is not None) else self.generator
        with eval_mode(g):
            return g(z.to(self.device), None if y is None else y.to(self.device)).clamp(-1, 1)

    # ---- Lightning hooks --------------------------------------------------------------------------------------
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        h = self.hparams
        betas = tuple(float(b) for b in h.betas)  # torch >= 2.14 rejects integer betas such as (0, 0.9)
        return [
            torch.optim.Adam(self.generator.parameters(), lr=h.lr_g, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=h.lr_d, betas=betas),
        ]

    def check_trainer(self, trainer: pl.Trainer) -> None:
        """UserError for a strategy or switch (compile, CUDA graphs) that ``trainer`` cannot run; ``gan fit`` calls it
        before writing the run folder, ``setup`` again for other callers."""
        check_strategy(trainer.strategy)
        h = self.hparams
        check_switches(h.compile, h.cuda_graphs, trainer.strategy.root_device, trainer.world_size, trainer.precision)

    def setup(self, stage: str) -> None:
        self.check_trainer(self.trainer)
        h = self.hparams
        if h.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        bad = nonfinite(checkpoint["state_dict"])
        if self._diverged(bool(bad) or self._losses.diverged()):  # raising here leaves the file on disk as it was
            what = f"non-finite values in {bad[0]}" if bad else "non-finite losses since the start"
            raise DivergedError(f"training diverged by G step {self._g_step} ({what}); this checkpoint is not "
                                f"written. {DIVERGED_FIX}")
        checkpoint["g_step"] = self._g_step

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._g_step = int(checkpoint.get("g_step", 0))

    def on_train_start(self) -> None:
        self._clock = (self._g_step, time.perf_counter())
        self.execution.start(self)

    def _next_real(self, dataloader_iter: Iterator) -> tuple[Tensor, Tensor | None]:
        """The next real batch on the device, with its labels for a conditional GAN (else None)."""
        batch, _, _ = next(dataloader_iter)
        images = item_image(batch)
        labels = item_label(batch).to(self.device, non_blocking=True) if self.num_classes is not None else None
        if self.hparams.channels_last:
            return images.to(self.device, non_blocking=True, memory_format=torch.channels_last), labels
        return images.to(self.device, non_blocking=True), labels

    def draw_fakes(self, n: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        """A step's fake inputs: n latents drawn on ``generator`` and, for a conditional GAN, their labels (drawn
        after them)."""
        z = self.sample_z(n, generator)
        y = self.sample_labels(n, generator)
        return (z,) if y is None else (z, y)

    def learning_rate_factor(self, g_step: int) -> float:
        """Both learning rates' multiplier at ``g_step``: linear decay to zero over max_g_steps with lr_decay."""
        return 1.0 - g_step / self.hparams.max_g_steps if self.hparams.lr_decay else 1.0

    def training_step(self, dataloader_iter: Iterator) -> None:
        h = self.hparams
        if self._g_step >= h.max_g_steps:  # e.g. resumed from the final checkpoint
            self.trainer.should_stop = True
            return
        factor = self.learning_rate_factor(self._g_step)
        for opt, lr in zip(self.optimizers(), (h.lr_g, h.lr_d)):
            set_learning_rate(opt, lr * factor)
        self._noise.manual_seed(latent_seed(h.seed, self.global_rank, self._g_step))
        run = self.execution
        for _ in range(h.n_dis):
            real, real_y = self._next_real(dataloader_iter)
            reals = (real,) if real_y is None else (real, real_y)
            d_loss, d_real, d_fake = run.d_step(*reals, *self.draw_fakes(real.shape[0], self._noise))
        (g_loss,) = run.g_step(*reals, *self.draw_fakes(h.g_batch_size or real.shape[0], self._noise))
        run.after_iteration(h.n_dis)
        self._g_step += 1
        self._losses.update(d_loss, g_loss)  # stays on the device; read at log steps and checkpoints
        self._update_ema()
        if self._g_step % h.log_every_n_g_steps == 0 or self._g_step >= h.max_g_steps:
            self._log(d_loss, g_loss, d_real, d_fake, factor)
        if self._g_step >= h.max_g_steps:
            self.trainer.should_stop = True

    def _check_losses(self) -> None:
        """At log steps, where the host holds the losses anyway: stop when a loss so far was not finite; say once
        when they grow huge (still finite, but the run is most likely diverging)."""
        shown = f"loss/d={self.last_metrics['loss/d']:.4g}, loss/g={self.last_metrics['loss/g']:.4g}"
        if self._diverged(self._losses.diverged()):
            raise DivergedError(f"training diverged by G step {self._g_step} ({shown}; a non-finite loss at this or "
                                f"an earlier step). {DIVERGED_FIX}")
        if self._losses.first_explosion(self.last_metrics["loss/d"], self.last_metrics["loss/g"]):
            rank_zero_warn(f"G step {self._g_step}: {shown}, beyond {EXPLODING_LOSS:g}: training is most likely "
                           "diverging; consider lower model.lr_d / model.lr_g")

    def _diverged(self, here: bool) -> bool:
        """``here`` agreed by every rank (a rank that stopped alone would leave the others waiting)."""
        return self.trainer.strategy.reduce_boolean_decision(here, all=False)

    def on_train_batch_end(self, *args) -> None:
        # DDP broadcasts rank 0's buffers (BN statistics, EMA copies) at the start of each step; doing it again at the
        # end keeps every rank's state identical at checkpoints and when training stops.
        if self.trainer.world_size > 1 and torch.distributed.is_initialized():
            for buffer in self.buffers():
                torch.distributed.broadcast(buffer, src=0)

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        decay = self.hparams.ema_decay if self._g_step > self.hparams.ema_start else 0.0
        for ema_p, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            ema_p.lerp_(p, 1.0 - decay)
        for ema_b, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_b.copy_(b)

    def _log(self, d_loss: Tensor, g_loss: Tensor, d_real: Tensor, d_fake: Tensor, factor: float) -> None:
        now = time.perf_counter()
        last_step, last_time = self._clock or (self._g_step - 1, now)
        speed = (self._g_step - last_step) / max(now - last_time, 1e-9)
        self._clock = (self._g_step, now)
        h = self.hparams
        losses = torch.stack([d_loss.float(), g_loss.float(), d_real.float().mean(), d_fake.float().mean()])
        loss_d, loss_g, mean_real, mean_fake = losses.tolist()  # one device sync, at log steps only
        self.last_metrics = {
            "g_step": self._g_step, "loss/d": loss_d, "loss/g": loss_g, "d/real": mean_real, "d/fake": mean_fake,
            "lr/g": h.lr_g * factor, "lr/d": h.lr_d * factor, "speed/g_steps_per_s": speed,
        }
        self._check_losses()  # before the loggers: no NaN row (a resume from the last good checkpoint logs anew)
        # straight to the loggers with step = g_step (self.log would index rows by Lightning's batch counter)
        send_metrics(self.loggers, self.last_metrics, self._g_step)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at ``path``, loaded as plain data only (``gan.runs.checkpoints``); a missing, unreadable or
    code-carrying file is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} does not exist; pass e.g. checkpoints/<run>/ckpt/last.ckpt")
    checkpoint = load_checkpoint_file(path)
    if not (isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict)
            and isinstance(checkpoint.get("hyper_parameters"), dict)):
        raise UserError(f"checkpoint {str(path)!r} is not a gan fit checkpoint; pass one from checkpoints/<run>/ckpt/")
    return checkpoint


def load_gan(path: str | Path, map_location: str | torch.device = "cpu") -> GAN:
    """A trained GAN from a ``gan fit`` checkpoint; UserError when the file is missing, not one (or not all of one:
    another project's checkpoint, entries removed), or its generator holds non-finite weights (a diverged run: its
    samples would be blank)."""
    read_checkpoint(path)
    try:
        gan = GAN.load_from_checkpoint(path, map_location=map_location, weights_only=True)
    except (KeyError, TypeError, RuntimeError) as err:
        problem = content_problem(err)
        if problem is None:
            raise
        raise UserError(f"checkpoint {str(path)!r} is not a complete gan fit checkpoint ({problem}); pass one from "
                        "checkpoints/<run>/ckpt/") from err
    generators = {"generator": gan.generator, "generator_ema": gan.generator_ema}
    bad = nonfinite({f"{name}.{key}": value for name, g in generators.items() if g is not None
                     for key, value in g.state_dict().items()})
    if bad:
        raise UserError(f"checkpoint {str(path)!r}: the generator holds non-finite weights ({bad[0]}), its run "
                        "diverged; use an earlier checkpoint of the run")
    return gan


def content_problem(err: Exception) -> str | None:
    """One line on what ``load_from_checkpoint`` found missing or unlike the model in a checkpoint's content; None
    for errors not about the content (e.g. out of GPU memory), which stay as they are."""
    if isinstance(err, KeyError):  # an entry Lightning or the module reads, e.g. 'pytorch-lightning_version'
        return f"no {err.args[0]!r} entry" if err.args else "an entry is missing"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if isinstance(err, RuntimeError):  # load_state_dict: a header line, then one line per kind of mismatch
        if not lines or not lines[0].startswith("Error(s) in loading state_dict"):
            return None
        lines = lines[1:]
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."
