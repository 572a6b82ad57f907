"""ConvNorm2d: Convolutional Normalization (Liu et al., NeurIPS 2021, arXiv 2103.00673), written from its definition.

For every output channel c the layer rescales the conv's frequency response so that the map x -> z_c is a
channel-wise isometry on the N_h x N_w circular grid (N = H + k - 1):

    Z_hat[b, c, f] = V[c, f] * sum_c' W_hat[c, c', f] * X_hat[b, c', f],   V[c, f] = (sum_c' |W_hat[c, c', f]|^2)^-1/2

followed by a crop of ``k - 1 - padding`` on each side, subsampling by the stride, and an optional learned
depthwise kernel ("affine"). Four algorithms (``ALGORITHMS``) compute the same operator to rounding:

* ``fast`` forms the product above directly in the Fourier domain, so a strided layer never runs the dense
  stride-1 convolution that the authors' algorithm needs (:func:`gan.layers.fourier.fourier_convnorm`);
* ``spatial`` runs the conv in space and only V's filter by real FFTs (:func:`gan.layers.spatial.spatial_convnorm`):
  the cheaper one at small batches and large images;
* ``mixed`` transforms along the width only and correlates along the height (:func:`gan.layers.mixed.mixed_convnorm`):
  the cheapest for strided layers at small batches;
* ``reference`` is the authors' algorithm: dense stride-1 conv, FFT, multiply by V, inverse FFT, crop, subsample
  (:func:`gan.layers.reference.reference_convnorm`).

By default (``algorithm="auto"``) each layer times its candidates on the first train forward of every input shape
and keeps the fastest (:mod:`gan.layers.dispatch`); the choice is recorded in the layer's state, so a resumed run
uses the same one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from gan.layers import dispatch
from gan.layers.fourier import (
    fourier_convnorm,
    onesided_to_full,
    preconditioner,
    resample_frequency_response,
)
from gan.layers.mixed import mixed_convnorm
from gan.layers.reference import reference_convnorm
from gan.layers.spatial import spatial_convnorm
from gan.layers.weight_cache import WeightCache

IntPair = int | tuple[int, int]
ALGORITHMS: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {
    "fast": fourier_convnorm,
    "spatial": spatial_convnorm,
    "reference": reference_convnorm,
    "mixed": mixed_convnorm,  # last: a checkpoint's recorded choices index CHOICES, whose order must not change
}
TRANSFORMS = ("dft", "fft")  # the fast path's: DFTs as real matmuls, or cuFFT and a complex batched matmul
BACKENDS = (None, *TRANSFORMS)  # None: by device (cuFFT on a GPU, DFTs on a CPU)
Choice = tuple[str, str | None]  # an algorithm and, for the fast one, its transforms
CHOICES: tuple[Choice, ...] = tuple((a, t) for a in ALGORITHMS for t in (TRANSFORMS if a == "fast" else (None,)))
AFFINE_INITS = ("random", "identity")


def choice_name(choice: Choice) -> str:
    """``"fast/dft"``, ``"spatial"``: how tables and reprs show a choice."""
    return "/".join(part for part in choice if part)


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"ConvNorm2d: {name}={value!r} must be an int or a pair of ints")


def dilate_kernel(weight: Tensor, dilation: tuple[int, int]) -> Tensor:
    """The equivalent undilated kernel (zeros between taps), so that dilation is just a larger kernel."""
    if dilation == (1, 1):
        return weight
    c_out, c_in, kh, kw = weight.shape
    out = weight.new_zeros(c_out, c_in, dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    out[:, :, :: dilation[0], :: dilation[1]] = weight
    return out


def ema_factor(step: int | Tensor, horizon: int, momentum: float | None) -> float | Tensor:
    """The authors' EMA weight of the newest V: cosine from 1 down to 0.01 over ``horizon`` forwards.

    Accepts the step as a tensor too, so that a training forward never waits on the device for the counter.
    """
    if momentum is not None:
        return momentum
    if isinstance(step, Tensor):
        t = step.clamp(max=horizon).double()
        return (0.5 * (1.0 + torch.cos(math.pi * t / horizon))).clamp(min=0.01)
    return max(0.5 * (1.0 + math.cos(math.pi * min(step, horizon) / horizon)), 0.01)


def _check_arguments(in_channels: int, out_channels: int, groups: int, kernel_size: tuple[int, int],
                     stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], padding_mode: str,
                     algorithm: str, backend: str | None, affine_init: str, momentum: float | None,
                     ema_horizon: int) -> None:
    """ConvNorm2d's constructor arguments, each refused with a ``ValueError`` that names it and the fix."""
    if padding_mode != "zeros":
        raise ValueError(
            f"ConvNorm2d: padding_mode={padding_mode!r} is not supported; ConvNorm is defined for zero padding, "
            "use padding_mode='zeros'"
        )
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"ConvNorm2d: groups={groups!r} must be an integer >= 1 (1: an ordinary conv)")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"ConvNorm2d: in_channels={in_channels} and out_channels={out_channels} must both be divisible "
            f"by groups={groups}"
        )
    if min(stride) < 1 or min(dilation) < 1 or min(kernel_size) < 1:
        raise ValueError("ConvNorm2d: kernel_size, stride and dilation must be >= 1")
    for k, d, p in zip(kernel_size, dilation, padding):
        if not 0 <= p <= d * (k - 1):
            raise ValueError(
                f"ConvNorm2d: padding={padding} is outside 0..dilation*(kernel_size-1) "
                f"= {d * (k - 1)}; ConvNorm crops the full convolution, so it cannot pad further"
            )
    if algorithm != "auto" and algorithm not in ALGORITHMS:
        raise ValueError(f"ConvNorm2d: algorithm={algorithm!r}; choose 'auto' or one of {tuple(ALGORITHMS)}")
    if backend not in BACKENDS:
        raise ValueError(f"ConvNorm2d: backend={backend!r}; choose one of {BACKENDS}")
    if affine_init not in AFFINE_INITS:
        raise ValueError(f"ConvNorm2d: affine_init={affine_init!r}; choose one of {AFFINE_INITS}")
    if momentum is not None and not 0.0 < momentum <= 1.0:
        raise ValueError(f"ConvNorm2d: momentum={momentum} must be in (0, 1] or None for the cosine schedule")
    if isinstance(ema_horizon, bool) or not isinstance(ema_horizon, int | float) or not 1 <= ema_horizon < math.inf:
        raise ValueError(f"ConvNorm2d: ema_horizon={ema_horizon!r} must be a number >= 1 (train forwards over "
                         "which the EMA weight of V falls; the authors use 40000)")


class ConvNorm2d(nn.Module):
    """Drop-in replacement for ``nn.Conv2d`` that applies ConvNorm to the conv's output.

    Args read like ``nn.Conv2d``'s. ``affine`` adds the learned depthwise kernel (size ``kernel_size``, with bias,
    output size kept for every k), initialised as the authors do (``affine_init="random"``: PyTorch's default conv
    init) or as the identity (``"identity"``: a centred delta and zero bias, so the layer starts as the bare
    channel-wise isometry); ``bn`` appends a ``BatchNorm2d`` after it, as the authors' module does by default
    (batch statistics: one sample's output then depends on the rest of its batch); ``eps`` is relative to each
    channel's kernel energy; ``momentum`` fixes the EMA weight of V (default: the authors' cosine schedule over
    ``ema_horizon`` train forwards); ``algorithm`` is ``"auto"`` (time the candidates per input shape, keep the
    fastest: :meth:`candidates`) or forces one of ``ALGORITHMS``; ``backend`` fixes the fast path's transforms
    (None: both are candidates on a GPU, DFTs as real matmuls on a CPU; ``"fft"`` / ``"dft"`` force one).

    Eval mode uses ``running_V``, the EMA of V over train forwards, stored on the grid of the last training
    resolution; at another resolution it is resampled by periodic bilinear interpolation in frequency. Before
    any train forward, eval uses V of the current weights.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = False,
        affine: bool = True,
        eps: float = 1e-12,
        momentum: float | None = None,
        ema_horizon: int = 40000,
        padding_mode: str = "zeros",
        algorithm: str = "auto",
        backend: str | None = None,
        affine_init: str = "random",
        bn: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        _check_arguments(in_channels, out_channels, groups, self.kernel_size, self.stride, self.padding,
                         self.dilation, padding_mode, algorithm, backend, affine_init, momentum, ema_horizon)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.eps, self.momentum, self.ema_horizon, self.algorithm = eps, momentum, ema_horizon, algorithm
        self.backend = backend
        self.padding_mode, self.affine_init = padding_mode, affine_init
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        if affine:
            self.affine_weight = nn.Parameter(torch.empty(out_channels, 1, *self.kernel_size))
            self.affine_bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("affine_weight", None)
            self.register_parameter("affine_bias", None)
        self.bn = nn.BatchNorm2d(out_channels) if bn else None
        self.register_buffer("running_V", torch.zeros(out_channels, 0, 0))
        self.register_buffer("num_steps", torch.zeros((), dtype=torch.long))
        # the dispatch's timed choices, one row each: the input key (_input_key) and the index in CHOICES
        self.register_buffer("algorithm_choices", torch.zeros(0, 6, dtype=torch.long))
        self._choices: dict[tuple[int, ...], int] = {}  # the same, readable without a device sync
        self._weight_V = WeightCache()  # V of the current weights, reused until they change
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default conv init for the weight and bias; the affine kernel as ``affine_init`` says."""
        for weight, bias in ((self.weight, self.bias), (self.affine_weight, self.affine_bias)):
            if weight is None:
                continue
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            if bias is not None:
                bound = 1 / math.sqrt(weight[0].numel())
                nn.init.uniform_(bias, -bound, bound)
        if self.affine_weight is not None and self.affine_init == "identity":
            kh, kw = self.kernel_size
            with torch.no_grad():
                self.affine_weight.zero_()[:, :, (kh - 1) // 2, (kw - 1) // 2] = 1.0  # the tap 'same' padding centres
                self.affine_bias.zero_()
        if self.bn is not None:
            self.bn.reset_parameters()

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kwargs) -> ConvNorm2d:
        """A ConvNorm2d with ``conv``'s settings, weight and bias (``kwargs`` set the ConvNorm-only options)."""
        if isinstance(conv.padding, str):
            raise ValueError(
                f"ConvNorm2d.from_conv: padding={conv.padding!r} is not supported; give the conv integer padding"
            )
        layer = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            **kwargs,
        )
        layer = layer.to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(conv.weight)
            if conv.bias is not None:
                layer.bias.copy_(conv.bias)
        return layer

    # ---- geometry -------------------------------------------------------------------------------------------
    def effective_kernel_size(self) -> tuple[int, int]:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))

    def _check_size(self, height: int, width: int) -> None:
        """Refuse an input smaller than the (dilated) kernel after padding, as nn.Conv2d does, in one line."""
        for name, n, k, p in zip(("height", "width"), (height, width), self.effective_kernel_size(), self.padding):
            if n + 2 * p < k:
                raise ValueError(
                    f"ConvNorm2d: input {name} {n} with padding {p} is smaller than the kernel's extent {k}; "
                    f"give inputs of at least {k - 2 * p} pixels or a smaller kernel"
                )

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The circular grid N_h x N_w of the full convolution for an H x W input."""
        kh, kw = self.effective_kernel_size()
        return height + kh - 1, width + kw - 1

    # ---- preconditioner and its running average ------------------------------------------------------------
    def current_V(self, grid: tuple[int, int]) -> Tensor:
        """V of the current weights on ``grid`` (C_out x N_h x N_w//2+1), detached."""
        return preconditioner(dilate_kernel(self.weight, self.dilation), grid, self.eps)

    def _track(self, v: Tensor, grid: tuple[int, int]) -> None:
        """One train forward: advance the step counter and fold V into the EMA ``running_V`` (full grid).

        ``running_V`` is resized only when its grid changes (first train forward, a new training resolution), so
        a compiled or captured forward sees a fixed-shape buffer updated in place.
        """
        with torch.no_grad():
            self.num_steps += 1
            v = onesided_to_full(v, grid[1]).to(self.running_V.dtype)
            if self.running_V.numel() == 0:
                self.running_V.resize_(v.shape).copy_(v)
                return
            f = ema_factor(self.num_steps, self.ema_horizon, self.momentum)
            if self.running_V.shape != v.shape:  # another training resolution: carry the average over to its grid
                old = resample_frequency_response(self.running_V, grid)
                self.running_V.resize_(v.shape).copy_(old)
            self.running_V.mul_(1 - f).add_(f * v)  # = f * v + (1 - f) * old, bit for bit

    def running_V_at(self, grid: tuple[int, int]) -> Tensor | None:
        """The running average of V resampled to ``grid`` (C_out x N_h x N_w//2+1); None before any train forward."""
        if self.running_V.numel() == 0:
            return None
        return resample_frequency_response(self.running_V, grid)[..., : grid[1] // 2 + 1]

    def _eval_V(self, grid: tuple[int, int]) -> Tensor | None:
        """Eval mode's V: the running average on ``grid``; None (current weights) in train mode or before training.

        A copy, never a view of ``running_V``: the next train forward updates that buffer in place, which would
        break the backward of an eval output that saved the view (as the spatial and reference paths do).
        """
        v = None if self.training else self.running_V_at(grid)
        return None if v is None else v.clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # running_V's shape is the training grid and the choices table grows per input shape, both unknown to a
        # freshly built layer: adopt the saved shapes. Checkpoints from before the dispatch have no choices.
        state_dict.setdefault(prefix + "algorithm_choices", self.algorithm_choices.new_zeros(0, 6))
        for name in ("running_V", "algorithm_choices"):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                getattr(self, name).resize_(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._choices = {tuple(row[:-1]): row[-1] for row in self.algorithm_choices.tolist()}

    # ---- algorithm dispatch ---------------------------------------------------------------------------------
    def _forced(self, device: torch.device) -> Choice:
        """The forced algorithm, or today's default (the fast path with the device's transforms) for ``"auto"``."""
        if self.algorithm in ("auto", "fast"):
            return "fast", self.backend or ("fft" if device.type == "cuda" else "dft")
        return self.algorithm, None

    def candidates(self, device: torch.device) -> tuple[Choice, ...]:
        """What ``"auto"`` times on ``device``: the fast path with each allowed transform (cuFFT on a GPU only: on
        a CPU it costs several times the DFTs), the spatial and the mixed paths, and on a GPU the reference too.
        On a CPU the spatial path (the reference with a cheaper V, backward and inverse) never lost to it in
        ``gan bench convnorm``; on an H200 the reference's few large cuFFT calls were the quickest at 16-32 px."""
        if self.algorithm != "auto":
            return (self._forced(device),)
        default = self._forced(device)  # first: the dispatch keeps it unless another is clearly quicker
        if device.type != "cuda":
            return default, ("spatial", None), ("mixed", None)
        others = tuple(("fast", t) for t in TRANSFORMS if not self.backend and t != default[1])
        return (default, *others, ("spatial", None), ("mixed", None), ("reference", None))

    @staticmethod
    def _input_key(x: Tensor) -> tuple[int, ...]:
        """What a choice depends on besides the layer: batch, height, width, float bits, on a GPU or not."""
        b, _, h, w = x.shape
        return b, h, w, torch.finfo(x.dtype).bits, int(x.is_cuda)

    def choice(self, x: Tensor) -> Choice:
        """The algorithm a forward on ``x`` uses without timing: forced, recorded for this input, or the default."""
        index = self._choices.get(self._input_key(x))
        if index is not None and CHOICES[index] in self.candidates(x.device):
            return CHOICES[index]
        return self._forced(x.device)

    def _dispatch(self, x: Tensor) -> Choice:
        """A train forward's algorithm: as :meth:`choice`, but a new input shape times the candidates first."""
        key, candidates = self._input_key(x), self.candidates(x.device)
        if len(candidates) == 1 or key in self._choices:
            return self.choice(x)
        kh, kw = self.effective_kernel_size()
        macs = x.shape[0] * x.shape[-2] * x.shape[-1] * self.in_channels // self.groups * self.out_channels * kh * kw
        if not dispatch.timing_allowed(x, self.training, macs // (self.stride[0] * self.stride[1])):
            return self._forced(x.device)
        shared = (self._geometry(), key, candidates)
        winner = dispatch.known_winner(shared)
        if winner is None:
            winner = dispatch.fastest(shared, [self._timed_run(x, c) for c in candidates], x.device)
        self._record(key, CHOICES.index(candidates[winner]))
        return candidates[winner]

    def _geometry(self) -> tuple:
        return (self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding, self.dilation,
                self.groups, self.bias is not None, self.affine_weight is not None)

    def _timed_run(self, x: Tensor, choice: Choice) -> Callable[[], None]:
        """Forward + backward of ``choice`` on ``x`` as training runs it, touching no state of the layer.

        A parametrized (spectrally normed) weight is timed through its raw original: reading ``self.weight``
        would take a power-iteration step.
        """
        raw = self.parametrizations.weight.original if parametrize.is_parametrized(self, "weight") else self.weight
        leaf = raw.detach().to(x.dtype).requires_grad_()
        x = x.detach().requires_grad_(x.requires_grad)
        bias = None if self.bias is None else self.bias.detach().to(x.dtype)
        inputs = [t for t in (x, leaf) if t.requires_grad]

        def run() -> None:
            z, _ = self._run(choice, x, dilate_kernel(leaf, self.dilation), bias, None)
            out = self._affine(z)
            if torch.is_grad_enabled():
                torch.autograd.grad(out, inputs, torch.ones_like(out))

        return run

    def _record(self, key: tuple[int, ...], index: int) -> None:
        """Keep a timed choice, in memory and in the state dict (so a resumed run makes the same one)."""
        self._choices[key] = index
        row = torch.tensor([[*key, index]], dtype=torch.long, device=self.algorithm_choices.device)
        table = torch.cat((self.algorithm_choices, row))
        self.algorithm_choices.resize_(table.shape).copy_(table)

    # ---- forward --------------------------------------------------------------------------------------------
    def normalize(self, x: Tensor, v: Tensor | None = None, choice: Choice | None = None) -> tuple[Tensor, Tensor]:
        """Steps 1-4 (conv, preconditioner, crop, stride; see gan.layers.reference) by ``choice`` (default:
        :meth:`choice`); returns (z, V). ``v=None`` uses V of the current weights; tests pass other V (V = 1 gives
        the plain conv).
        """
        weight = dilate_kernel(self.weight.to(x.dtype), self.dilation)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return self._run(choice or self.choice(x), x, weight, bias, v)

    def _run(
        self, choice: Choice, x: Tensor, weight: Tensor, bias: Tensor | None, v: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        algorithm, transforms = choice
        options = {"backend": transforms} if transforms else {}
        return ALGORITHMS[algorithm](x, weight, bias, v, self.eps, self.padding, self.stride, self.groups, **options)

    def _normalize_current(self, x: Tensor, grid: tuple[int, int], choice: Choice) -> tuple[Tensor, Tensor]:
        """``normalize`` with V of the current weights, computed once per weight update (kept in a WeightCache).

        A parametrized weight (spectral norm) is recomputed, and changed by a power iteration, on every access: its
        V is never kept, and it is not read here (a read would iterate once more).
        """
        if parametrize.is_parametrized(self, "weight"):
            return self.normalize(x, choice=choice)
        key = (grid, x.dtype, x.device, choice)
        cached = self._weight_V.get(self.weight, key)
        z, v = self.normalize(x, cached, choice)
        if cached is None:
            self._weight_V.put(self.weight, key, v)
        return z, v

    def _affine(self, z: Tensor) -> Tensor:
        if self.affine_weight is None:
            return z
        kh, kw = self.kernel_size
        weight, bias = self.affine_weight.to(z.dtype), self.affine_bias.to(z.dtype)
        if (kh, kw) == (1, 1):  # a per-channel scale and shift
            return torch.addcmul(bias.view(1, -1, 1, 1), z, weight.view(1, -1, 1, 1))
        # channels-last: the CPU's depthwise conv runs about 3x faster (forward + backward) in that layout
        z = z.contiguous(memory_format=torch.channels_last)
        out = F.conv2d(z, weight, bias, padding=(kh // 2, kw // 2), groups=self.out_channels)
        return out[..., 1 - kh % 2 :, 1 - kw % 2 :]  # even k: pad (k-1)//2 before and k//2 after, as 'same' does

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ConvNorm2d: expected input of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        self._check_size(*x.shape[-2:])
        device_type = x.device.type
        # autocast leaves float64 alone, as it does for nn.Conv2d
        autocast = torch.is_autocast_enabled(device_type) and x.dtype != torch.float64
        out_dtype = torch.get_autocast_dtype(device_type) if autocast else x.dtype
        work_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type, enabled=False):
            x = x.to(work_dtype)
            grid = self.grid(*x.shape[-2:])
            choice = self._dispatch(x) if self.training else self.choice(x)
            v = self._eval_V(grid)
            if v is None:
                z, v = self._normalize_current(x, grid, choice)
            else:
                z, v = self.normalize(x, v.to(work_dtype), choice)
            if self.training:
                self._track(v, grid)
            out = self._affine(z)
            if self.bn is not None:
                out = self.bn(out)
        return out.to(out_dtype)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}"
        )
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        s += f", bias={self.bias is not None}, affine={self.affine_weight is not None}"
        if self.affine_weight is not None and self.affine_init != "random":
            s += f", affine_init={self.affine_init}"
        s += (", bn=True" if self.bn is not None else "") + f", algorithm={self.algorithm}"
        return s + (f", backend={self.backend}" if self.backend else "")
