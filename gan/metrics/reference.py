"""Reference sets and their statistics: the real images a FID is measured against, identified by every protocol
field, their statistics extracted once and cached (checksummed) so an evaluation only pays for the fake images."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity.utils import get_featuresdict_from_dataset

from gan.data import DATA_ROOT, DATASETS, build_dataset, default_split
from gan.errors import UserError
from gan.metrics.adapters import UInt8Images
from gan.metrics.cache import cache_root, load_checked, log, save_checked
from gan.metrics.scores import gaussian_statistics


@dataclass(frozen=True)
class Reference:
    """A set of real images and the protocol fields that identify its statistics in the cache."""

    name: str  # e.g. "fashion-mnist/test"
    build: Callable[[], Dataset]  # -> uint8 3xHxW items
    image_size: int
    num_samples: int | None = None  # None: the whole split
    seed: int = 0  # which subset, when num_samples is smaller than the split
    fingerprint: str = ""  # content identity where the name is not enough (image folders)

    @classmethod
    def from_data(cls, dataset: str, split: str, image_size: int, channels: int, num_samples: int | None = None,
                  root: str = DATA_ROOT, seed: int = 0) -> Reference:
        """A ``gan.data`` dataset split at the generator's resolution (resized as training saw it)."""

        def build() -> Dataset:
            return UInt8Images(build_dataset(dataset, root=root, split=split, image_size=image_size,
                                             channels=channels))

        fingerprint = folder_fingerprint(Path(root)) if dataset == "folder" else ""
        label = f"folder:{Path(root).resolve()}" if dataset == "folder" else dataset
        grey = "/grey" if channels == 1 else ""  # grey CIFAR is another reference than CIFAR
        return cls(f"{label}/{split}{grey}", build, image_size, num_samples, seed, fingerprint)

    @classmethod
    def from_training_data(cls, data: Mapping[str, Any] | None, image_size: int, channels: int,
                           num_samples: int | None = None, *, dataset: str | None = None, split: str | None = None,
                           root: str | None = None, field: str = "--dataset") -> Reference:
        """The reference for a model trained on ``data`` (its DataModule's hyperparameters: name, split, root):
        the images it trained on, at its resolution, unless ``dataset`` / ``split`` / ``root`` say otherwise.
        ``field`` names the setting that supplies a dataset when ``data`` does not."""
        data = data or {}
        dataset = dataset or data.get("name")
        if not dataset:
            raise UserError(f"no reference dataset: the training data is not known here; set {field} "
                            f"(one of {', '.join(DATASETS)})")
        split = split or data.get("split") or default_split(dataset)
        return cls.from_data(dataset, split, image_size, channels, num_samples, root or data.get("root") or DATA_ROOT)

    def describe(self) -> dict:
        return {"reference": self.name, "resolution": self.image_size, "num_real": self.num_samples,
                "real_subset_seed": self.seed}

    def cache_path(self, cache: Path, extractor: str, layer: str, weights_id: str) -> Path:
        key = {**self.describe(), "fingerprint": self.fingerprint, "extractor": extractor, "layer": layer,
               "weights": weights_id}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.name)[-60:]
        count = "all" if self.num_samples is None else self.num_samples
        return cache / "reference" / f"{slug}-{self.image_size}px-n{count}-{extractor}-{digest}.pt"

    def dataset(self) -> Dataset:
        data = self.build()
        total = len(data)  # type: ignore[arg-type]
        if total == 0:
            raise UserError(f"reference {self.name} has no images")
        if self.num_samples is None or self.num_samples == total:
            return data
        if self.num_samples > total:
            raise UserError(f"reference {self.name} has {total} images; --num-real {self.num_samples} asks for more")
        order = torch.randperm(total, generator=torch.Generator().manual_seed(self.seed))
        return UInt8Images(data, sorted(order[: self.num_samples].tolist()))


def folder_fingerprint(folder: Path) -> str:
    """Names, sizes and mtimes of every file: a changed image folder gets new reference statistics."""
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist")
    entries = sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                     for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


def reference_statistics(reference: Reference, extractor: nn.Module, layer: str, weights_id: str, *,
                         with_features: bool = False, batch_size: int = 64, cuda: bool = False,
                         cache: Path | None = None, verbose: bool = True) -> dict[str, Tensor]:
    """Statistics (and, for KID, features) of a reference set: from the cache, else computed and cached."""
    path = reference.cache_path(cache or cache_root(), extractor.get_name(), layer, weights_id)
    stats = load_checked(path, verbose)
    if stats is not None and (not with_features or "features" in stats):
        log(f"reference statistics: {path}", verbose)
        return stats
    data = reference.dataset()
    log(f"reference statistics of {reference.name} ({len(data)} images, {reference.image_size}px): "
        f"extracting features once, cached at {path}", verbose)
    features = get_featuresdict_from_dataset(data, extractor, batch_size, cuda, not cuda, verbose)[layer]
    stats = {**gaussian_statistics(features), "num_samples": torch.tensor(len(features))}
    if len(features) < 2 or not all(torch.isfinite(v).all() for v in stats.values()):  # never cache a broken one
        raise UserError(f"reference statistics of {reference.name} from {len(features)} images are not finite; "
                        "use at least 2 images (--num-real) of finite pixel values")
    if with_features:
        stats["features"] = features
    save_checked(stats, path)
    return stats
