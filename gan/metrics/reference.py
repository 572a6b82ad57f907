"""Reference sets and their statistics: the real images a FID is measured against, identified by every protocol
field, their statistics extracted once and cached (checksummed) so an evaluation only pays for the fake images."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity.utils import get_featuresdict_from_dataset

from gan.data import DATA_ROOT, DATASETS, build_dataset, dataset_classes, dataset_labels, default_split, item_label
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
    label: int | None = None  # this class's images only (of the subset above): intra-class FID's reference

    @classmethod
    def from_data(cls, dataset: str, split: str, image_size: int, channels: int, num_samples: int | None = None,
                  root: str = DATA_ROOT, seed: int = 0, num_classes: int | None = None) -> Reference:
        """A ``gan.data`` dataset split at the generator's resolution (resized as training saw it); ``num_classes``
        labels synthetic images as a conditional run's training data (other datasets carry their own labels)."""
        classes = num_classes if dataset == "synthetic" else None

        def build() -> Dataset:
            return UInt8Images(build_dataset(dataset, root=root, split=split, image_size=image_size,
                                             channels=channels, num_classes=classes))

        fingerprint = folder_fingerprint(Path(root)) if dataset == "folder" else ""
        label = f"folder:{Path(root).resolve()}" if dataset == "folder" else dataset
        grey = "/grey" if channels == 1 else ""  # grey CIFAR is another reference than CIFAR
        labelled = f"/{classes}-classes" if classes else ""  # labelled synthetic images differ from unlabelled
        return cls(f"{label}/{split}{grey}{labelled}", build, image_size, num_samples, seed, fingerprint)

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
        return cls.from_data(dataset, split, image_size, channels, num_samples, root or data.get("root") or DATA_ROOT,
                             num_classes=data.get("num_classes") if dataset == data.get("name") else None)


    def describe(self) -> dict:
        described = {"reference": self.name, "resolution": self.image_size, "num_real": self.num_samples,
                     "real_subset_seed": self.seed}
        return described if self.label is None else {**described, "class": self.label}  # old cache keys kept

    def for_class(self, label: int) -> Reference:
        """The images of class ``label`` within this reference's (seeded) subset, cached under their own key."""
        return replace(self, label=label)

    def num_classes(self) -> int | None:
        """How many classes the reference's labels name (None: unlabelled); builds the dataset."""
        data = self.build()
        return dataset_classes(data.dataset if isinstance(data, UInt8Images) else data)

    def cache_path(self, cache: Path, extractor: str, layer: str, weights_id: str) -> Path:
        key = {**self.describe(), "fingerprint": self.fingerprint, "extractor": extractor, "layer": layer,
               "weights": weights_id}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.name)[-60:]
        count = "all" if self.num_samples is None else self.num_samples
        part = "" if self.label is None else f"-class{self.label}"
        return cache / "reference" / f"{slug}-{self.image_size}px-n{count}{part}-{extractor}-{digest}.pt"

    def dataset(self) -> Dataset:
        data = self.build()
        total = len(data)  # type: ignore[arg-type]
        if total == 0:
            raise UserError(f"reference {self.name} has no images")
        if self.num_samples is None or self.num_samples == total:
            indices = list(range(total))
        elif self.num_samples > total:
            raise UserError(f"reference {self.name} has {total} images; --num-real {self.num_samples} asks for more")
        else:
            order = torch.randperm(total, generator=torch.Generator().manual_seed(self.seed))
            indices = sorted(order[: self.num_samples].tolist())
        if self.label is not None:
            labels = item_labels(data)
            indices = [i for i in indices if labels[i] == self.label]
            if len(indices) < 2:  # a covariance needs two
                raise UserError(f"reference {self.name} has {len(indices)} images of class {self.label} among its "
                                f"{self.num_samples or total}; raise --num-real")
        return data if len(indices) == total else UInt8Images(data, indices)


def item_labels(data: Dataset) -> list[int]:
    """Every item's label, read without decoding images where the dataset keeps them (``gan.data``'s do)."""
    inner = data.dataset if isinstance(data, UInt8Images) else data
    labels = dataset_labels(inner)
    if labels is None:
        labels = [int(item_label(inner[i])) for i in range(len(inner))]  # type: ignore[arg-type]
    if isinstance(data, UInt8Images):
        return [labels[i] for i in data.indices]
    return labels


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
    which = reference.name if reference.label is None else f"{reference.name} class {reference.label}"
    log(f"reference statistics of {which} ({len(data)} images, {reference.image_size}px): "
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
