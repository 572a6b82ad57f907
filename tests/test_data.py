"""Datasets in [-1, 1], image folders, the offline Fashion-MNIST path, errors, and the resumable batch stream."""

import gzip
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import child_env
from PIL import Image

from gan.data import (
    DATASETS,
    GANDataModule,
    InfiniteBatchSampler,
    ResumableLoader,
    build_dataset,
    default_split,
    unpack_debian_fashion_mnist,
)
from gan.errors import UserError


def test_synthetic_images_are_in_range_and_deterministic():
    a = build_dataset("synthetic", image_size=16, channels=3, num_samples=8, seed=1)
    b = build_dataset("synthetic", image_size=16, channels=3, num_samples=8, seed=1)
    assert len(a) == 8 and a[0][0].shape == (3, 16, 16)
    assert a[0][0].min() >= -1 and a[0][0].max() <= 1 and a[0][0].std() > 0.1
    assert torch.equal(a[3][0], b[3][0])


def test_image_folder_reads_nested_files_and_resizes(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "a" / "red.png")
    Image.new("L", (20, 20), 0).save(tmp_path / "a" / "b" / "black.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = build_dataset("folder", root=str(tmp_path), image_size=16, channels=3)
    assert len(ds) == 2
    black, red = ds[0][0], ds[1][0]  # sorted by path: a/b/black.jpg, a/red.png
    assert black.shape == red.shape == (3, 16, 16)
    assert black.max() == -1 and red[0].min() == 1 and red[1].max() == -1
    assert build_dataset("folder", root=str(tmp_path), image_size=8, channels=1)[1][0].shape == (1, 8, 8)


def test_image_folder_errors(tmp_path):
    with pytest.raises(UserError, match="data.root=.*is not a folder"):
        build_dataset("folder", root=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="holds no images"):
        build_dataset("folder", root=str(tmp_path))


def _idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload)


@pytest.fixture
def debian_fashion_mnist(tmp_path) -> Path:
    """The Debian package's layout with a train split of 3 white images and a test split of 2 black ones."""
    src = tmp_path / "deb"
    src.mkdir()
    for prefix, n, pixel in (("train", 3, 255), ("t10k", 2, 0)):
        _idx(src / f"{prefix}-images-idx3-ubyte.gz", 2051, (n, 28, 28), bytes([pixel]) * (n * 28 * 28))
        _idx(src / f"{prefix}-labels-idx1-ubyte.gz", 2049, (n,), bytes(range(n)))
    return src


def test_fashion_mnist_from_the_debian_package_layout(tmp_path, debian_fashion_mnist):
    root = tmp_path / "data"
    assert unpack_debian_fashion_mnist(root, debian_fashion_mnist)
    assert (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").stat().st_size == 16 + 3 * 28 * 28
    ds = build_dataset("fashion-mnist", root=str(root), split="train", image_size=32, channels=1, download=False)
    assert len(ds) == 3 and ds[0][0].shape == (1, 32, 32) and ds[0][0].min() == 1
    assert len(build_dataset("fashion-mnist", root=str(root), split="test", image_size=32, channels=3)) == 2
    assert not unpack_debian_fashion_mnist(tmp_path / "other", tmp_path / "nothing-here")


UNPACK_WHEN_TOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import gan.data
    source, root, go, ready = map(Path, sys.argv[1:5])
    gan.data.DEBIAN_FASHION_MNIST = source
    ready.touch()
    while not go.exists():
        time.sleep(0.001)
    print(len(gan.data.build_dataset("fashion-mnist", str(root), "train", 8, 1, download=False)))
""")


def test_processes_started_together_on_a_fresh_root_all_get_fashion_mnist(tmp_path):
    """As a study or a DDP launch starts them: each unpacks (or waits for) the Debian package's files; before the
    data root's lock, all but one died renaming a .tmp file that another process had already moved."""
    src = tmp_path / "deb"
    src.mkdir()
    noise = torch.randint(0, 256, (3000 * 28 * 28,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    for prefix, n in (("train", 3000), ("t10k", 500)):  # a few MB: unpacking takes long enough to overlap
        _idx(src / f"{prefix}-images-idx3-ubyte.gz", 2051, (n, 28, 28), noise[: n * 28 * 28].numpy().tobytes())
        _idx(src / f"{prefix}-labels-idx1-ubyte.gz", 2049, (n,), bytes(i % 10 for i in range(n)))
    (tmp_path / "unpack.py").write_text(UNPACK_WHEN_TOLD)
    root, go = tmp_path / "data", tmp_path / "go"
    workers = [subprocess.Popen([sys.executable, str(tmp_path / "unpack.py"), str(src), str(root), str(go),
                                 str(tmp_path / f"ready{i}")], env=child_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.05)
    go.touch()
    results = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in results]
    assert [out.strip() for out, _ in results] == ["3000"] * 2
    for gz in src.iterdir():
        assert (root / "FashionMNIST" / "raw" / gz.stem).read_bytes() == gzip.open(gz).read()
    assert not list((root / "FashionMNIST" / "raw").glob("*.tmp"))


def test_a_damaged_image_is_named_when_the_folder_dataset_is_built(tmp_path):
    for i in range(3):
        Image.new("RGB", (10, 10), (80 * i, 0, 0)).save(tmp_path / f"{i}.jpg")
    (tmp_path / "1.jpg").write_bytes((tmp_path / "1.jpg").read_bytes()[:200])
    (tmp_path / "2.jpg").write_bytes(b"\x89PNG but not really")
    with pytest.raises(UserError, match=r"2 of 3 images cannot be read \(first: .*1.jpg: OSError\)"):
        build_dataset("folder", root=str(tmp_path), image_size=8)


def test_missing_dataset_names_the_fixes(tmp_path):
    with pytest.raises(UserError, match="data.name='cifar10'.*data.download=true.*data.root.*fashion-mnist"):
        build_dataset("cifar10", root=str(tmp_path), download=False)
    with pytest.raises(UserError, match="data.name='imagenet' is unknown"):
        build_dataset("imagenet")
    with pytest.raises(UserError, match="data.split='val'"):
        build_dataset("mnist", root=str(tmp_path), split="val")


def test_batch_stream_shards_ranks_and_reshuffles_each_pass():
    take = lambda sampler, n: [next(it) for it in [iter(sampler)] for _ in range(n)]  # noqa: E731
    r0 = take(InfiniteBatchSampler(12, 3, seed=0, rank=0, world_size=2), 4)
    r1 = take(InfiniteBatchSampler(12, 3, seed=0, rank=1, world_size=2), 4)
    assert sorted(sum(r0[:2] + r1[:2], [])) == list(range(12))  # pass 0 split between the ranks, no overlap
    assert sorted(sum(r0[2:] + r1[2:], [])) == list(range(12))
    assert r0[:2] + r1[:2] != r0[2:] + r1[2:]
    with pytest.raises(UserError, match="batch_size=20"):
        InfiniteBatchSampler(12, 20)


def test_loader_resumes_where_it_stopped():
    ds = build_dataset("synthetic", image_size=8, channels=1, num_samples=10)
    first = ResumableLoader(ds, InfiniteBatchSampler(len(ds), 4, seed=3))
    it = iter(first)
    straight = [next(it)[0] for _ in range(6)]
    resumed = ResumableLoader(ds, InfiniteBatchSampler(len(ds), 4, seed=3))
    resumed.load_state_dict({"consumed": 4})
    it = iter(resumed)
    assert all(torch.equal(next(it)[0], b) for b in straight[4:])
    assert first.state_dict() == {"consumed": 6}


def test_datamodule_default_split_and_loader(tmp_path, debian_fashion_mnist):
    root = tmp_path / "data"
    unpack_debian_fashion_mnist(root, debian_fashion_mnist)
    options = dict(root=str(root), image_size=8, channels=1, batch_size=2, num_workers=0, download=False)
    dm = GANDataModule("fashion-mnist", **options)  # no split: the training split (3 white images, not 2 black)
    images, _ = next(iter(dm.train_dataloader()))
    assert len(dm.dataset) == 3 and images.shape == (2, 1, 8, 8) and images.dtype == torch.float32
    assert torch.equal(images, torch.ones_like(images))
    test = GANDataModule("fashion-mnist", split="test", **options)
    assert torch.equal(next(iter(test.train_dataloader()))[0], -torch.ones(2, 1, 8, 8))
    assert [default_split(name) for name in DATASETS] == ["train", "train", "unlabeled", *["train"] * 4]
