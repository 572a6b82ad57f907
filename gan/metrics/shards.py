"""An evaluation shared by the processes of a distributed run: each process generates its share of the images and
extracts their features, rank 0 gathers the features and scores.

The share is whole batches: process r takes batches r, r + W, r + 2W, ... of the single-process order, each drawn
from the same latents as there (torch-fidelity's seeded noise stream, batch by batch) and, for a conditional
generator, the same labels (those of its samples' global indices, :meth:`GeneratorAdapter.labels`). Every batch is
therefore
computed exactly as a single process computes it, and the gathered features, put back in order, give the metrics
of a single-process evaluation of the same samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch_fidelity.registry import NOISE_SOURCE_REGISTRY
from torch_fidelity.utils import get_featuresdict_from_dataset

from gan.metrics.adapters import GeneratorAdapter, UInt8Images
from gan.utils.modes import eval_mode


@dataclass(frozen=True)
class Shard:
    """This process's part (``rank`` of ``world_size``) of an evaluation run by every process of a
    ``torch.distributed`` group."""

    rank: int
    world_size: int

    @classmethod
    def of(cls, trainer: pl.Trainer) -> Shard | None:
        """The trainer's process in a distributed run; None for a single process."""
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            return cls(trainer.global_rank, trainer.world_size)
        return None

    def batches(self, num_batches: int) -> range:
        return range(self.rank, num_batches, self.world_size)

    def sync(self, module: nn.Module) -> None:
        """Every process gets rank 0's weights and buffers: a rank's BatchNorm statistics may still hold its own
        last batch's, until the training loop re-synchronises them."""
        with torch.no_grad():
            for tensor in module.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)

    def gather(self, part: object) -> list | None:
        """Every process's ``part``, in rank order, on rank 0; None elsewhere."""
        parts = [None] * self.world_size if self.rank == 0 else None
        torch.distributed.gather_object(part, parts, dst=0)
        return parts


def latent_batches(fake: GeneratorAdapter, num_samples: int, batch_size: int, seed: int) -> Iterator[Tensor]:
    """The latents of each batch, drawn as torch-fidelity's ``get_featuresdict_from_generative_model`` draws them."""
    rng = np.random.RandomState(seed)
    for start in range(0, num_samples, batch_size):
        yield NOISE_SOURCE_REGISTRY[fake.z_type](rng, (min(batch_size, num_samples - start), fake.z_size))


def shared_fake_features(fake: GeneratorAdapter, extractor: nn.Module, num_fake: int, batch_size: int, cuda: bool,
                         seed: int, shard: Shard, verbose: bool) -> dict[str, Tensor] | None:
    """The features of ``num_fake`` generated images, this process computing its batches: on rank 0 all of them in
    the single-process order, None on the other ranks."""
    batch_size = min(batch_size, num_fake)  # as torch-fidelity does
    num_batches = math.ceil(num_fake / batch_size)
    mine = shard.batches(num_batches)
    shard.sync(fake.generator)
    device = torch.device("cuda" if cuda else "cpu")
    labels = fake.labels(num_fake, seed)  # by global sample index: the single-process labels of each batch
    images = []
    with eval_mode(fake), torch.no_grad():
        for index, latents in enumerate(latent_batches(fake, num_fake, batch_size, seed)):
            if index in mine:
                start = index * batch_size
                inputs = [latents] if labels is None else [latents, labels[start : start + len(latents)]]
                images.append(fake(*(x.to(device) for x in inputs)).cpu())
    features = {}
    if images:  # consecutive whole batches: torch-fidelity's loader cuts them where they were generated
        features = get_featuresdict_from_dataset(UInt8Images(torch.cat(images)), extractor, batch_size, cuda, True,
                                                 verbose)
    parts = shard.gather((list(mine), features))
    if parts is None:
        return None
    by_batch = {}
    for batches, part in parts:
        offset = 0
        for index in batches:
            size = min(batch_size, num_fake - index * batch_size)
            by_batch[index] = {layer: values[offset : offset + size] for layer, values in part.items()}
            offset += size
    return {layer: torch.cat([by_batch[i][layer] for i in range(num_batches)]) for layer in by_batch[0]}
