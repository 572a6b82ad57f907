"""The SNGAN D step and G step, written once: the GAN module runs them in every execution mode
(:mod:`gan.training.execution`) and ``gan bench step``'s plain loop runs them bare, so the benchmark measures the
step that trains.

A step's inputs are tensors only, ``real[, real_y], z[, fake_y]`` (labels for a conditional GAN), because a CUDA
graph records a function of tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from gan.models import has_batch_statistics

LossFn = Callable[..., Tensor]


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """``net``'s parameters need no gradient inside (D in the G step); each parameter's flag is restored after."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


class SNGANSteps:
    """The D and G updates over ``generator`` / ``discriminator`` (plain or compiled modules) with the optimizers
    and ``backward`` the caller sets: plain torch ones, or Lightning's wrappers when a step hook needs them."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, d_loss_fn: LossFn, g_loss_fn: LossFn,
                 conditional: bool) -> None:
        self.generator, self.discriminator = generator, discriminator
        self.d_loss_fn, self.g_loss_fn = d_loss_fn, g_loss_fn
        self.conditional = conditional
        self.d_batch_stats = has_batch_statistics(discriminator)
        self.opt_g: torch.optim.Optimizer | None = None
        self.opt_d: torch.optim.Optimizer | None = None
        self.backward: Callable[[Tensor], None] = Tensor.backward

    def split(self, inputs: tuple[Tensor, ...]) -> tuple[tuple[Tensor, Tensor | None], tuple[Tensor, Tensor | None]]:
        """``real[, real_y], z[, fake_y]`` as (real, real_y), (z, fake_y), the labels None when unconditional."""
        if not self.conditional:
            return (inputs[0], None), (inputs[1], None)
        return (inputs[0], inputs[1]), (inputs[2], inputs[3])

    def discriminator_step(self, *inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One D update on the real batch and G's images of the latents; returns D's loss and its logits of the
        real and fake images."""
        (real, real_y), (z, fake_y) = self.split(inputs)
        with torch.no_grad():
            fake = self.generator(z, fake_y)
        labels = None if real_y is None else torch.cat([real_y, fake_y])
        d_real, d_fake = self.discriminator(torch.cat([real, fake]), labels).split([real.shape[0], fake.shape[0]])
        d_loss = self.d_loss_fn(d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        self.backward(d_loss)
        self.opt_d.step()
        return d_loss, d_real, d_fake

    def generator_step(self, *inputs: Tensor) -> tuple[Tensor]:
        """One G update on G's images of the latents (the real batch only matters to a D with batch statistics);
        returns G's loss."""
        (real, real_y), (z, fake_y) = self.split(inputs)
        with frozen(self.discriminator):
            g_loss = self.g_loss_fn(self.score_fakes(self.generator(z, fake_y), fake_y, real, real_y))
            self.opt_g.zero_grad(set_to_none=True)
            self.backward(g_loss)
            self.opt_g.step()
        return (g_loss,)

    def score_fakes(self, fake: Tensor, fake_y: Tensor | None, real: Tensor, real_y: Tensor | None) -> Tensor:
        """D's logits of ``fake`` in the G step; a D with batch statistics sees them beside ``real``, as in D steps."""
        if not self.d_batch_stats:
            return self.discriminator(fake, fake_y)
        labels = None if fake_y is None else torch.cat([real_y, fake_y])
        return self.discriminator(torch.cat([real, fake]), labels)[real.shape[0]:]
