"""Whole training steps as CUDA graphs: forward, backward and optimizer step recorded once and replayed.

At GPU speed the SNGAN step is bound by kernel launches and Python, not arithmetic (a ConvNorm or spectral-norm
layer launches dozens of small kernels). Replaying a recorded graph launches the whole step at once. What a
replay needs, and this module provides:

* static inputs: each call copies its tensors into buffers recorded once (the graph reads fixed addresses);
* eager warm-up on the capture stream first (cuBLAS / cuFFT plans, optimizer state, ConvNorm's ``running_V`` get
  their final addresses and shapes before recording), and these warm-up calls are real training steps;
* an optimizer whose whole step runs on the device (``capturable``): Adam's step counter lives on the GPU and the
  learning rate is a device tensor updated in place, so a replay reads the current rate.

In-place buffer updates inside the step (spectral norm's power iteration, ConvNorm's EMA of V, BatchNorm
statistics, Adam's moments) are recorded like any other kernel and repeat on every replay. Under autocast the
step runs with autocast's weight-cast cache off: a cast cached by an earlier eager call would otherwise be baked
into the graph as a stale copy of the weights (the casts then happen inside the graph, giving the same numbers).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor

from gan.layers.weight_cache import forget_all


class CapturedStep:
    """``step(*inputs) -> tuple of tensors`` run eagerly for ``warmup`` calls, then recorded as a CUDA graph over
    static copies of its inputs and replayed from then on.

    The returned tensors are the graph's static outputs: valid until the next call of this step.
    """

    def __init__(self, step: Callable[..., tuple[Tensor, ...]], warmup: int = 3) -> None:
        self.step, self.warmup, self.calls = step, warmup, 0
        self.stream: torch.cuda.Stream | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: tuple[Tensor, ...] = ()
        self.outputs: tuple[Tensor, ...] = ()

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        self.calls += 1
        if self.stream is None:
            self.stream = torch.cuda.Stream()
        if self.graph is None and self.calls <= self.warmup:
            return self._eager(inputs)
        if self.graph is None:
            self._record(inputs)
        for static, value in zip(self.inputs, inputs):
            static.copy_(value, non_blocking=True)
        self.graph.replay()
        forget_all()  # the replayed optimizer step wrote the weights without moving their version counters
        return self.outputs

    def _eager(self, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One call on the capture stream, so that libraries create their per-stream state before recording."""
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream), _uncached_autocast():
            outputs = self.step(*inputs)
        torch.cuda.current_stream().wait_stream(self.stream)
        return outputs

    def _record(self, inputs: tuple[Tensor, ...]) -> None:
        self.inputs = tuple(x.detach().clone() for x in inputs)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: a loader's pin-memory thread may allocate pinned memory while the main thread records
        with torch.cuda.graph(self.graph, stream=self.stream, capture_error_mode="thread_local"), _uncached_autocast():
            self.outputs = self.step(*self.inputs)


def _uncached_autocast() -> contextlib.AbstractContextManager:
    """The surrounding CUDA autocast, if any, with its weight-cast cache off."""
    if not torch.is_autocast_enabled("cuda"):
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), cache_enabled=False)


def set_capturable(optimizer: torch.optim.Optimizer, capturable: bool) -> None:
    """Switch an Adam-style optimizer between its device-side (``capturable``) and host-side step.

    Capturable: the step counters move to the parameters' device and the learning rates become device tensors
    (updated in place by :func:`set_learning_rate`). Host-side: counters back on the CPU, rates plain floats. Also
    applied after a checkpoint saved in the other mode was loaded, whose param groups carry that mode's settings.
    """
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        device = group["params"][0].device
        lr = group["lr"]
        if capturable and not isinstance(lr, Tensor):
            group["lr"] = torch.tensor(float(lr), device=device)
        elif not capturable and isinstance(lr, Tensor):
            group["lr"] = float(lr)
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            if "step" in state:
                state["step"] = state["step"].to(device if capturable else "cpu", torch.float32)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every param group's rate: in place when it is a device tensor (a recorded step reads it from there)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
