"""How the GAN module's D and G steps run, so that the module itself is only the algorithm: eagerly through
Lightning's wrappers (when a step hook, DDP or loss scaling needs them) or as direct torch calls, compiled
(``model.compile``) and recorded as CUDA graphs (``model.cuda_graphs``, :mod:`gan.training.cuda_graphs`).

The switches are checked before training; each refusal is one line naming the switch, why this machine or run
cannot use it, and what to set instead.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import Tensor

from gan.errors import UserError
from gan.training.cuda_graphs import CapturedStep, set_capturable
from gan.training.steps import SNGANSteps

CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes that record CUDA graphs themselves


STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


# torch.compile's checks below use torch internals (``torch._inductor.list_mode_options``,
# ``torch._dynamo.is_dynamo_supported``, ``torch._inductor.cpp_builder.get_cpp_compiler``): torch offers no public
# way to list the modes or to ask, before compiling, whether compiling can work here. They are used only in this
# module; tests/test_acceleration.py fails loudly if an upgrade moves them.


def compile_modes() -> tuple[str, ...]:
    """The torch.compile modes this torch knows (``default``, ``reduce-overhead``, ``max-autotune``, ...)."""
    import torch._inductor

    return tuple(torch._inductor.list_mode_options())


def check_compile_mode(mode: str | None) -> str | None:
    """``mode`` when torch.compile knows it, else a UserError listing the modes."""
    if mode is not None and mode not in compile_modes():
        raise UserError(f"model.compile={mode!r} is not a torch.compile mode; choose one of: "
                        f"{', '.join(compile_modes())} (or null to train eagerly)")
    return mode


def check_strategy(strategy: pl.strategies.Strategy) -> None:
    """DDP must be told that a step leaves parameters unused: the D step never touches G's, the G step D's.

    Lightning keeps DDP's arguments in the private ``_ddp_kwargs`` (no public reader; the wrapped model that would
    say it exists only once training starts); this is its one use, pinned by tests/test_acceleration.py."""
    if isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get("find_unused_parameters"):
        raise UserError("trainer.strategy: the D and G steps backpropagate through different parameters, so DDP needs "
                        "find_unused_parameters; use trainer.strategy=ddp_find_unused_parameters_true")


def check_switches(compile_mode: str | None, cuda_graphs: bool, device: torch.device, world_size: int,
                   precision: str) -> None:
    """Refuse, before training starts, the switches this machine or run cannot use."""
    if compile_mode is not None:
        if not torch._dynamo.is_dynamo_supported():
            raise UserError(f"model.compile={compile_mode!r}: torch.compile does not support this Python / platform; "
                            "set model.compile null")
        if device.type == "cpu":
            from torch._inductor import cpp_builder

            try:
                cpp_builder.get_cpp_compiler()
            except Exception as err:  # noqa: BLE001 - inductor says it in several ways
                raise UserError(f"model.compile={compile_mode!r}: torch.compile needs a C++ compiler on the CPU "
                                f"({err}); install g++ or set model.compile null") from err
        if compile_mode == "reduce-overhead" and device.type != "cuda":
            raise UserError(f"model.compile={compile_mode!r} records CUDA graphs, which need a CUDA device (this run "
                            f"is on {device.type}); use model.compile default")
    if not cuda_graphs:
        return
    if device.type != "cuda":
        raise UserError(f"model.cuda_graphs records CUDA graphs, which need a CUDA device (this run is on "
                        f"{device.type}); set model.cuda_graphs false")
    if world_size > 1:
        raise UserError("model.cuda_graphs records one process's steps; with several processes (DDP) set "
                        "model.cuda_graphs false and use model.compile")
    if compile_mode in CUDA_GRAPH_MODES:
        raise UserError(f"model.cuda_graphs records whole steps, which model.compile={compile_mode!r} cannot sit "
                        "inside (it records its own graphs); use model.compile default or max-autotune-no-cudagraphs")
    if str(precision).startswith("16"):
        raise UserError(f"model.cuda_graphs: trainer.precision={precision} scales the loss with a host-side check "
                        "on every step, which a CUDA graph cannot record; use bf16-mixed or 32")


def lightning_step_wrappers_needed(trainer: pl.Trainer, module: pl.LightningModule) -> str | None:
    """What needs ``manual_backward`` / ``LightningOptimizer.step`` at every step of this run, or None.

    Those wrappers call the step hooks, scale fp16 losses and prepare DDP's backward. On one device, without loss
    scaling and with no callback or module implementing a step hook, plain ``loss.backward()`` and
    ``optimizer.step()`` do the same work with less Python per step (:class:`Execution` keeps Lightning's count).
    """
    strategy = trainer.strategy
    if type(strategy) is not SingleDeviceStrategy:
        return f"trainer.strategy {type(strategy).__name__}"
    plugin = strategy.precision_plugin
    if not (type(plugin) is Precision or (type(plugin) is MixedPrecision and plugin.scaler is None)):
        return f"trainer.precision {trainer.precision}"
    for owner in [module, *trainer.callbacks]:
        for hook in (*STEP_HOOKS, "backward") if owner is module else STEP_HOOKS:
            if is_overridden(hook, owner):
                return f"{type(owner).__name__}.{hook}"
    return None


class Execution:
    """The one object the module calls to run its steps: ``d_step`` / ``g_step`` as the chosen mode runs them,
    ``start`` when training starts, ``after_iteration`` after each SNGAN iteration."""

    def __init__(self, steps: SNGANSteps, compile_mode: str | None, cuda_graphs: bool) -> None:
        self.steps, self.compile_mode, self.cuda_graphs = steps, compile_mode, cuda_graphs
        self.direct = False  # plain backward / optimizer.step instead of Lightning's wrappers
        self.compiled = False
        self.captured: tuple[CapturedStep, CapturedStep] | None = None
        self.trainer: pl.Trainer | None = None

    @property
    def d_step(self) -> Callable[..., tuple[Tensor, ...]]:
        return self.captured[0] if self.captured else self.steps.discriminator_step

    @property
    def g_step(self) -> Callable[..., tuple[Tensor, ...]]:
        return self.captured[1] if self.captured else self.steps.generator_step

    def start(self, module: pl.LightningModule) -> None:
        """Choose direct or wrapped steps for this run, put Adam in the matching (device- or host-side) form, and
        record CUDA graphs from the next step on when asked (compiled ones once compiled)."""
        self.trainer = trainer = module.trainer
        needs_wrappers = lightning_step_wrappers_needed(trainer, module)
        if self.cuda_graphs and needs_wrappers:
            raise UserError(f"model.cuda_graphs replays whole steps without running Python, but {needs_wrappers} "
                            "must run at every step; remove it or set model.cuda_graphs false")
        self.direct = needs_wrappers is None
        opt_g, opt_d = module.optimizers()
        if self.direct:
            self.steps.opt_g, self.steps.opt_d, self.steps.backward = opt_g.optimizer, opt_d.optimizer, Tensor.backward
        else:
            self.steps.opt_g, self.steps.opt_d, self.steps.backward = opt_g, opt_d, module.manual_backward
        for opt in trainer.optimizers:  # also turns a checkpoint saved in the other mode into this one's
            set_capturable(opt, self.cuda_graphs)
        if self.cuda_graphs and self.compile_mode is None:
            self._record()

    def after_iteration(self, n_dis: int) -> None:
        """Count direct steps as Lightning's own, and compile G and D after the first G step (see ``_compile``)."""
        if self.direct:
            self._count_steps(n_dis + 1)
        if self.compile_mode is not None and not self.compiled:
            self._compile()
            if self.cuda_graphs:  # record the compiled steps
                self._record()

    def _count_steps(self, n: int) -> None:
        """``trainer.global_step`` for steps taken without ``LightningOptimizer.step``: the progress counter that
        method advances (Lightning offers no call for this; tests/test_acceleration.py fails if its meaning moves)."""
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        for _ in range(n):
            progress.increment_ready()
            progress.increment_completed()

    def _compile(self) -> None:
        """torch.compile G and D for the steps, after one eager G step: that step gives ConvNorm's ``running_V`` its
        shape, a resize no graph can hold. Static shapes: the D step and the G step each feed D one batch size."""
        self.steps.generator, self.steps.discriminator = (
            torch.compile(net, mode=self.compile_mode, dynamic=False)
            for net in (self.steps.generator, self.steps.discriminator))
        self.compiled = True

    def _record(self) -> None:
        """From now on the D and G steps warm up, are recorded as CUDA graphs and replayed (model.cuda_graphs)."""
        self.captured = (CapturedStep(self.steps.discriminator_step), CapturedStep(self.steps.generator_step))
