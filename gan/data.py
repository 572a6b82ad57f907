"""Training images in [-1, 1]: one builder for every dataset and one LightningDataModule with a resumable loader.

``build_dataset(name, root, split, image_size, channels)`` returns a Dataset whose items are ``(image, label)`` with
``image`` a float C x H x W tensor in [-1, 1]. :func:`dataset_classes` says how many classes its labels name (None:
it has no labels), which a conditional model checks at setup (:func:`check_classes`). Torchvision datasets download
into ``root`` when there is a network; Fashion-MNIST is also taken from the Debian package ``dataset-fashion-mnist``
with no network.

Training batches come from :class:`ResumableLoader`: an endless shuffled stream (reshuffled each pass with ``seed +
epoch``) that counts the batches it has handed out and saves that count in Lightning checkpoints, so a resumed run
sees exactly the batches the uninterrupted run would have seen. Under DDP rank r takes batches r, r + W, r + 2W, ...
of the one global stream (Lightning's sampler injection is off: ``use_distributed_sampler``).
"""

from __future__ import annotations

import gzip
import os
import shutil
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import datasets, transforms

from gan.errors import UserError
from gan.utils.files import FileLock
from gan.utils.validate import MAX_DATA_SEED, at_least, check_image_format, seed_in_range

DATA_ROOT = ".data"  # where datasets are read from (and downloaded to) unless data.root says otherwise
DATASETS = ("cifar10", "cifar100", "stl10", "fashion-mnist", "mnist", "folder", "synthetic")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DATA_LOCK = ".gan-data.lock"  # in the data root: taken while a dataset is unpacked or downloaded there
_TORCHVISION = {
    "cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100, "stl10": datasets.STL10,
    "fashion-mnist": datasets.FashionMNIST, "mnist": datasets.MNIST,
}


class _ToMode:
    """PIL image -> 'L' or 'RGB' (a class, not a lambda, so loader workers can pickle it)."""

    def __init__(self, channels: int) -> None:
        self.mode = "L" if channels == 1 else "RGB"

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.convert(self.mode)


def image_transform(image_size: int, channels: int) -> transforms.Compose:
    """PIL image -> channels x size x size float tensor in [-1, 1] (shorter side resized, then centre crop)."""
    return transforms.Compose([
        _ToMode(channels),
        transforms.Resize(image_size),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * channels, [0.5] * channels),
    ])


def check_images(files: Sequence[str | os.PathLike], where: str, same_size: bool = False) -> None:
    """Decode every file once now, so a damaged image stops the command here with its name, not mid-run; UserError
    naming ``where`` (the setting that points at the images) and the first bad file.

    ``same_size``: the images must also share one size (``gan eval --folder`` scores them unresized, in batches that
    only stack equal sizes).
    """
    bad, sizes = [], {}
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                sizes.setdefault(image.size, path)
        except Exception as err:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError, bomb errors...
            bad.append((path, err))
    if bad:
        path, err = bad[0]
        raise UserError(
            f"{where}: {len(bad)} of {len(files)} images cannot be read (first: {path}: {type(err).__name__}); "
            "remove or replace them"
        )
    if same_size and len(sizes) > 1:
        (size, path), (other, other_path) = list(sizes.items())[:2]
        raise UserError(f"{where}: images differ in size ({path} is {size[0]}x{size[1]}, {other_path} is "
                        f"{other[0]}x{other[1]}); resize them all to one size")


class ImageFolderDataset(Dataset):
    """Every image file under ``root`` (any nesting), sorted by path.

    When every image sits inside a top-level subfolder (torchvision's ImageFolder layout), the subfolders are the
    classes (sorted by name) and an image's label is its subfolder's index; otherwise the folder is unlabelled
    (``classes`` None, label 0). Either way the images come in the same order.
    """

    def __init__(self, root: str | os.PathLike, transform: transforms.Compose) -> None:
        self.root, self.transform = Path(root), transform
        if not self.root.is_dir():
            raise UserError(f"data.root={str(root)!r} is not a folder; point data.root at a folder of images")
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise UserError(
                f"data.root={str(root)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "point data.root at a folder that contains some"
            )
        check_images(self.files, f"data.root={str(self.root)!r}")
        tops = [path.relative_to(self.root).parts for path in self.files]
        self.classes = sorted({parts[0] for parts in tops}) if all(len(parts) > 1 for parts in tops) else None
        index = {name: i for i, name in enumerate(self.classes or ())}
        self.targets = [index[parts[0]] if self.classes else 0 for parts in tops]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        with Image.open(self.files[index]) as image:
            return self.transform(image), self.targets[index]


class SyntheticImages(Dataset):
    """Deterministic smooth random images (low-resolution noise, upsampled, squashed into [-1, 1]) for tests.

    With ``num_classes``, image i has label ``i % num_classes`` and its brightness shifted by its class (so the
    classes differ); without, every label is 0 and the images are those of an unlabelled set of the same seed.
    """

    def __init__(self, num_samples: int, image_size: int, channels: int, seed: int = 0,
                 num_classes: int | None = None) -> None:
        g = torch.Generator().manual_seed(seed)
        low = torch.randn(num_samples, channels, 4, 4, generator=g)
        up = torch.nn.functional.interpolate(low, size=(image_size, image_size), mode="bilinear", align_corners=False)
        self.classes = None if num_classes is None else [str(k) for k in range(num_classes)]
        self.targets = [i % num_classes if num_classes else 0 for i in range(num_samples)]
        if num_classes:
            shift = torch.tensor(self.targets, dtype=up.dtype) / max(num_classes - 1, 1) * 2 - 1
            up = up + shift[:, None, None, None]
        self.images = torch.tanh(2 * up)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], self.targets[index]


def default_split(name: str) -> str:
    """The split a dataset trains on unless told otherwise, and the one its FID reference is taken from."""
    return "unlabeled" if name == "stl10" else "train"


def item_image(item: Tensor | tuple | list) -> Tensor:
    """The image of a dataset item or batch: items are ``(image, label)`` here, other datasets may give the image."""
    return item[0] if isinstance(item, tuple | list) else item


def item_label(item: Tensor | tuple | list) -> Tensor | int | None:
    """The label of a dataset item or batch (None when the items are bare images)."""
    return item[1] if isinstance(item, tuple | list) and len(item) > 1 else None


def dataset_classes(dataset: Dataset) -> int | None:
    """How many classes the dataset's labels name; None for an unlabelled set (STL-10's ``unlabeled`` split, a
    flat image folder, synthetic images made without classes)."""
    if isinstance(dataset, datasets.STL10) and dataset.split != "train" and dataset.split != "test":
        return None  # "unlabeled" (-1 labels) and "train+unlabeled" (a mix)
    classes = getattr(dataset, "classes", None)
    return len(classes) if classes else None


def dataset_labels(dataset: Dataset) -> list[int] | None:
    """Every item's label without decoding an image (torchvision keeps them in ``targets`` or ``labels``)."""
    for name in ("targets", "labels"):
        labels = getattr(dataset, name, None)
        if labels is not None:
            return [int(y) for y in labels]
    return None


def check_classes(dataset: Dataset, num_classes: int | None, name: str, split: str | None) -> None:
    """A conditional model (``model.num_classes``) needs a labelled dataset with exactly that many classes, every
    label in ``[0, num_classes)``; UserError naming both otherwise. Unconditional models take any dataset."""
    if num_classes is None:
        return
    where = f"data.name={name}" + (f" (split {split})" if name in _TORCHVISION else "")
    found = dataset_classes(dataset)
    if found is None:
        fix = "use its labelled split (data.split=train)" if name == "stl10" else (
            "put each class's images in its own subfolder of data.root" if name == "folder" else
            "use a labelled dataset")
        raise UserError(f"{where} has no class labels, but model.num_classes={num_classes} asks for a conditional "
                        f"model; {fix}, or set model.num_classes null")
    if found != num_classes:
        raise UserError(f"{where} has {found} classes but model.num_classes={num_classes}; set model.num_classes "
                        f"{found}")
    labels = dataset_labels(dataset) or []
    bad = [y for y in labels if not 0 <= y < num_classes]
    if bad:
        raise UserError(f"{where}: {len(bad)} labels lie outside 0..{num_classes - 1} (first: {bad[0]}); fix the "
                        "dataset's labels or model.num_classes")


def unpack_debian_fashion_mnist(root: str | os.PathLike, source: Path | None = None) -> bool:
    """Gunzip the Debian package's IDX files (``source``, default DEBIAN_FASHION_MNIST) into
    ``root/FashionMNIST/raw`` (torchvision's layout); True if done.

    The package's gzip files are recompressed, so torchvision's checksums fail on them; the unpacked files load.
    Processes started together (a study, a DDP launch) take turns on the data root's lock.
    """
    files = sorted((source or DEBIAN_FASHION_MNIST).glob("*-ubyte.gz"))
    if len(files) < 4:
        return False
    raw = Path(root) / "FashionMNIST" / "raw"
    if all((raw / gz.name[: -len(".gz")]).exists() for gz in files):
        return True
    try:
        with FileLock(Path(root) / DATA_LOCK):
            raw.mkdir(parents=True, exist_ok=True)
            for gz in files:
                out = raw / gz.name[: -len(".gz")]
                if not out.exists():  # else another process unpacked it while this one waited
                    tmp = out.with_suffix(".tmp")
                    try:
                        with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                    except (gzip.BadGzipFile, EOFError, zlib.error) as err:  # the source, not data.root
                        tmp.unlink(missing_ok=True)
                        raise UserError(f"{gz}: the offline Fashion-MNIST file is damaged ({err}); reinstall its "
                                        "package (sudo apt-get install --reinstall dataset-fashion-mnist)") from err
                    tmp.replace(out)  # atomic: an interrupted unpack never leaves a truncated file under the real name
    except OSError as err:  # a read-only folder, a file in the way, a full disk: the user's root, not a bug
        raise UserError(
            f"data.root={str(root)!r}: cannot unpack Fashion-MNIST there ({type(err).__name__}: "
            f"{err.strerror or err}); set data.root (gan eval: --root) to a writable folder"
        ) from err
    return True


def _missing(name: str, root: str, err: Exception) -> UserError:
    fixes = "run once with internet access (data.download=true), or copy torchvision's files for it into data.root"
    if name == "fashion-mnist":
        fixes = "install the Debian package (sudo apt-get install dataset-fashion-mnist), " + fixes
    return UserError(
        f"data.name={name!r}: not found under data.root={root!r} and could not be downloaded ({type(err).__name__}); "
        f"fix: {fixes}, set data.root to where it is, or train offline with data.name=fashion-mnist, folder "
        "or synthetic"
    )


def build_dataset(
    name: str,
    root: str = DATA_ROOT,
    split: str | None = None,
    image_size: int = 32,
    channels: int = 3,
    download: bool = True,
    num_samples: int = 1024,
    seed: int = 0,
    num_classes: int | None = None,
) -> Dataset:
    """The dataset ``name`` (see DATASETS); split "train"/"test" (stl10: "unlabeled", "train", "test"; None: the
    :func:`default_split`).

    ``folder`` reads every image under ``root`` (one class per top-level subfolder when all images are in one);
    ``synthetic`` makes ``num_samples`` images from ``seed``, labelled with ``num_classes`` classes when given.
    """
    if name not in DATASETS:
        raise UserError(f"data.name={name!r} is unknown; choose one of: {', '.join(DATASETS)}")
    check_image_format("data", image_size, channels)
    if name == "synthetic":
        return SyntheticImages(num_samples, image_size, channels, seed, num_classes)
    transform = image_transform(image_size, channels)
    if name == "folder":
        return ImageFolderDataset(root, transform)
    split = split or default_split(name)
    splits = ("unlabeled", "train", "test", "train+unlabeled") if name == "stl10" else ("train", "test")
    if split not in splits:
        raise UserError(f"data.split={split!r} does not exist for {name}; choose one of: {', '.join(splits)}")
    kind = {"split": split} if name == "stl10" else {"train": split == "train"}
    if name == "fashion-mnist":
        unpack_debian_fashion_mnist(root)
    try:
        return _TORCHVISION[name](root, transform=transform, download=False, **kind)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        if not download:
            raise _missing(name, root, err) from err
    try:
        with FileLock(Path(root) / DATA_LOCK):  # one process downloads; the others wait, then find the files there
            return _TORCHVISION[name](root, transform=transform, download=True, **kind)
    except Exception as err:  # noqa: BLE001 - no network shows up as URLError, OSError, RuntimeError...
        raise _missing(name, root, err) from err


def check_batch_size(batch_size: int, size: int) -> None:
    """A batch must fit in the dataset (every batch is distinct images of one pass)."""
    if size < batch_size:
        raise UserError(f"data.batch_size={batch_size} exceeds the dataset's {size} images; lower it")


class InfiniteBatchSampler(Sampler[list[int]]):
    """Endless shuffled batches of one rank: batch k is batch ``k * world_size + rank`` of the global stream, whose
    pass e is ``randperm(size)`` seeded with ``seed + e`` (the last incomplete batch of a pass is dropped)."""

    def __init__(self, size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        check_batch_size(batch_size, size)
        self.size, self.batch_size, self.seed, self.rank, self.world_size = size, batch_size, seed, rank, world_size
        self.start = 0  # the first batch the next iterator yields

    def __iter__(self) -> Iterator[list[int]]:
        per_pass = self.size // self.batch_size
        k, perm, perm_pass = self.start * self.world_size + self.rank, None, -1
        while True:
            epoch, i = divmod(k, per_pass)
            if epoch != perm_pass:
                perm = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + epoch))
                perm_pass = epoch
            yield perm[i * self.batch_size : (i + 1) * self.batch_size].tolist()
            k += self.world_size


class ResumableLoader(DataLoader):
    """A DataLoader over an :class:`InfiniteBatchSampler` that counts the batches it has handed out; Lightning saves
    and restores the count (``state_dict`` / ``load_state_dict``), so the stream continues where it stopped."""

    def __init__(self, dataset: Dataset, batch_sampler: InfiniteBatchSampler, **kwargs) -> None:
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self.consumed = 0

    def __iter__(self) -> Iterator:
        self.batch_sampler.start = self.consumed
        for batch in super().__iter__():
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consumed = int(state["consumed"])


class GANDataModule(pl.LightningDataModule):
    """Real images for GAN training (items ``(image, label)``, images in [-1, 1]).

    Args:
        name: one of cifar10, cifar100, stl10, fashion-mnist, mnist, folder, synthetic.
        root: data folder (torchvision datasets download here); for ``folder``, the image folder itself.
        split: None: the dataset's training split (:func:`default_split`: "train", "unlabeled" for stl10).
        image_size, channels: what the models expect; images are resized / centre-cropped / converted to fit.
        batch_size: real images per discriminator step (per process under DDP).
        num_workers: loader worker processes (0 loads in the training process).
        download: let torchvision download a missing dataset.
        num_samples: size of the ``synthetic`` dataset.
        seed: shuffling seed of the batch stream.
        num_classes: the conditional model's class count (``gan fit`` links it to ``model.num_classes``): setup
            checks the dataset's labels against it; ``synthetic`` data is made with that many classes.
    """

    def __init__(
        self,
        name: str = "cifar10",
        root: str = DATA_ROOT,
        split: str | None = None,
        image_size: int = 32,
        channels: int = 3,
        batch_size: int = 64,
        num_workers: int = 2,
        download: bool = True,
        num_samples: int = 1024,
        seed: int = 0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        for field, value, minimum in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                                      ("num_samples", num_samples, 1)):
            at_least(f"data.{field}", value, minimum)
        seed_in_range("data.seed", seed, MAX_DATA_SEED)
        check_image_format("data", image_size, channels)
        # kept in checkpoints but not sent to the loggers: Lightning merges the logged hparams of model and data and
        # refuses a key both hold with different values, and data.seed (shuffling) may differ from model.seed (the
        # latents). The run folder's config.yaml records both.
        self.save_hyperparameters(logger=False)
        self.dataset: Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is None:
            h = self.hparams
            self.dataset = build_dataset(
                h.name, root=h.root, split=h.split or default_split(h.name), image_size=h.image_size,
                channels=h.channels, download=h.download, num_samples=h.num_samples, seed=h.seed,
                num_classes=h.num_classes,
            )
            check_classes(self.dataset, h.num_classes, h.name, h.split or default_split(h.name))
            check_batch_size(h.batch_size, len(self.dataset))  # before gan fit writes anything

    def train_dataloader(self) -> ResumableLoader:
        self.setup()
        h, trainer = self.hparams, self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = InfiniteBatchSampler(len(self.dataset), h.batch_size, h.seed, rank, world)
        return ResumableLoader(
            self.dataset, sampler, num_workers=h.num_workers, pin_memory=torch.cuda.is_available(),
            persistent_workers=h.num_workers > 0,
        )
