"""What torch-fidelity reads: uint8 3xHxW images, from a generator or from a ``gan.data`` dataset."""

from __future__ import annotations

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
    """A generator as torch-fidelity sees it: z ~ N(0, I) of size ``z_dim`` -> uint8 3xHxW."""

    def __init__(self, generator: nn.Module, z_dim: int) -> None:
        super().__init__()
        self.generator = generator
        self._z_dim = int(z_dim)
        self.ema = False  # recorded in the protocol: which generator was scored

    @classmethod
    def from_gan(cls, gan: nn.Module, ema: bool = True) -> GeneratorAdapter:
        """The GAN module's EMA generator when it has one (and ``ema``), else its raw generator."""
        ema_generator = getattr(gan, "generator_ema", None)
        adapter = cls(ema_generator if ema and ema_generator is not None else gan.generator, gan.z_dim)
        adapter.ema = ema and ema_generator is not None
        return adapter

    @property
    def z_size(self) -> int:
        return self._z_dim

    @property
    def z_type(self) -> str:
        return "normal"

    @property
    def num_classes(self) -> int:
        return 0

    def forward(self, z: Tensor) -> Tensor:
        return to_uint8_rgb(self.generator(z))


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
