"""What torch-fidelity reads: uint8 3xHxW images, from a generator or from a ``gan.data`` dataset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity import GenerativeModelBase

from gan.data import item_image
from gan.errors import UserError


def to_uint8_rgb(images: Tensor) -> Tensor:
    """Float images in [-1, 1] (..., C, H, W), C = 1 or 3, as uint8 (..., 3, H, W).

    Rounds like ``torchvision.utils.save_image`` of ``(x + 1) / 2``, so scoring a generator directly and
    scoring the PNGs it wrote give the same pixels. Grey images are repeated to 3 channels (Inception is RGB).
    """
    if images.dim() < 3 or images.shape[-3] not in (1, 3) or not images.is_floating_point():
        raise UserError(
            f"images for FID must be float (N,)CxHxW with C 1 or 3 in [-1, 1]; got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    pixels = images.detach().float().add(1).mul(127.5).add(0.5).clamp(0, 255).to(torch.uint8)
    if pixels.shape[-3] == 1:
        pixels = pixels.expand(*pixels.shape[:-3], 3, *pixels.shape[-2:])
    return pixels.contiguous()


class GeneratorAdapter(GenerativeModelBase):
    """A generator as torch-fidelity sees it: z ~ N(0, I) of size ``z_dim`` -> uint8 3xHxW.

    A class-conditional generator (``classes``: its class count) gets its labels here, not from torch-fidelity:
    torch-fidelity 0.4's own label draw uses ``np.int``, gone in numpy 2, so the adapter tells it ``num_classes``
    0. Labels are either ``label`` for every sample (intra-class FID) or, with ``label`` None, drawn uniformly by
    :meth:`labels` from a ``torch.Generator`` seeded with the evaluation seed, sample i taking label i of that draw:
    they depend on the sample's place in the evaluation only (not on batch size or on a process's share).
    """

    def __init__(self, generator: nn.Module, z_dim: int, classes: int | None = None,
                 label: int | None = None) -> None:
        super().__init__()
        if label is not None and (classes is None or not 0 <= label < classes):
            raise UserError(f"class {label} does not exist: the generator has {classes or 'no'} classes")
        self.generator = generator
        self._z_dim = int(z_dim)
        self.classes, self.label = classes, label
        self.ema = False  # recorded in the protocol: which generator was scored
        self._queue: Tensor | None = None  # labels still to hand out, inside sampling()

    @classmethod
    def from_gan(cls, gan: nn.Module, ema: bool = True) -> GeneratorAdapter:
        """The GAN module's EMA generator when it has one (and ``ema``), else its raw generator; a conditional
        GAN's adapter draws labels uniformly."""
        ema_generator = getattr(gan, "generator_ema", None)
        adapter = cls(ema_generator if ema and ema_generator is not None else gan.generator, gan.z_dim,
                      getattr(gan, "num_classes", None))
        adapter.ema = ema and ema_generator is not None
        return adapter

    def for_class(self, label: int) -> GeneratorAdapter:
        """The same generator with every sample of class ``label``."""
        adapter = GeneratorAdapter(self.generator, self._z_dim, self.classes, label)
        adapter.ema = self.ema
        return adapter

    @property
    def z_size(self) -> int:
        return self._z_dim

    @property
    def z_type(self) -> str:
        return "normal"

    @property
    def num_classes(self) -> int:
        return 0  # torch-fidelity's conditional path crashes on numpy 2: labels are ours (see the class docstring)

    def labels(self, num_samples: int, seed: int) -> Tensor | None:
        """The labels of samples 0..num_samples-1 of an evaluation seeded with ``seed`` (None: unconditional)."""
        if self.classes is None:
            return None
        if self.label is not None:
            return torch.full((num_samples,), self.label, dtype=torch.long)
        return torch.randint(self.classes, (num_samples,), generator=torch.Generator().manual_seed(seed))

    def describe_labels(self) -> dict:
        """The label protocol, for results: nothing for an unconditional generator."""
        if self.classes is None:
            return {}
        how = f"class {self.label}" if self.label is not None else (
            f"drawn uniformly over {self.classes} classes (torch.Generator seeded with the evaluation seed)")
        return {"labels": how, "num_classes": self.classes}

    @contextmanager
    def sampling(self, num_samples: int, seed: int) -> Iterator[None]:
        """Within: calls without labels take the next ones of :meth:`labels`, in order (as torch-fidelity draws its
        batches); a fixed-class adapter needs no such context."""
        self._queue = self.labels(num_samples, seed)
        try:
            yield
        finally:
            self._queue = None

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.classes is None:
            return to_uint8_rgb(self.generator(z))
        if y is None and self.label is not None:
            y = torch.full((len(z),), self.label, dtype=torch.long)
        elif y is None:
            if self._queue is None or len(self._queue) < len(z):
                raise RuntimeError("a conditional GeneratorAdapter draws its labels inside sampling(num, seed)")
            y, self._queue = self._queue[: len(z)], self._queue[len(z):]
        return to_uint8_rgb(self.generator(z, y.to(z.device)))


class UInt8Images(Dataset):
    """A ``gan.data`` dataset (items are, or begin with, float CxHxW in [-1, 1]) as uint8 3xHxW items."""

    def __init__(self, dataset: Dataset, indices: list[int] | None = None) -> None:
        self.dataset = dataset
        self.indices = list(range(len(dataset))) if indices is None else list(indices)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Tensor:
        image = item_image(self.dataset[self.indices[i]])
        if not torch.is_tensor(image):
            raise UserError(f"dataset item {self.indices[i]} is a {type(image).__name__}, not a CxHxW tensor")
        return image if image.dtype == torch.uint8 and image.shape[0] == 3 else to_uint8_rgb(image)
