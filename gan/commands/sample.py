"""``gan sample CKPT --num N --out PATH``: images from a trained generator, as one PNG grid or (``--folder``) a
folder of N numbered PNG files (e.g. for FID tools). The EMA generator when the run has one (``--no-ema``: the raw
generator), as ``gan eval`` and the training's sample grids. Same ``--seed`` and checkpoint, same images.

A class-conditional model draws each image's label uniformly (after the latents, from the same seed) unless told
the classes: ``--class K`` (every image of class K), ``--classes 0,3,7`` or ``--class-grid`` (every class): the N
images are shared equally by the listed classes, each class getting the same latents, so a grid has one row per
class and the rows differ by class alone (``--class-grid --num 80``, seed 0: the training's last sample grid of a
run with ``run.sample_num`` 80). ``--folder`` then writes one subfolder per class (``out/<class>/<index>.png``,
torchvision's ImageFolder layout), which ``gan eval --folder`` and ``data.name=folder`` read."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from PIL import Image
from rich.progress import track
from torchvision.utils import save_image

from gan.callbacks import save_grid
from gan.callbacks.samples import class_grid_inputs
from gan.errors import UserError
from gan.training.module import GAN, load_gan
from gan.utils.devices import resolve_device
from gan.utils.files import check_writable_folder
from gan.utils.validate import at_least, seed_in_range


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gan sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="checkpoint from gan fit, e.g. checkpoints/<run>/ckpt/last.ckpt")
    parser.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--out", default=None, help="output PNG or, with --folder, a folder")
    parser.add_argument("--folder", action="store_true", help="write N separate PNG files into --out")
    parser.add_argument("--no-ema", action="store_true", help="use the raw generator even when an EMA one exists")
    parser.add_argument("--seed", type=int, default=0, help="latent noise seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=256, help="images generated at once (default 256)")
    parser.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu or cuda[:i]")
    classes = parser.add_mutually_exclusive_group()
    classes.add_argument("--class", dest="class_", metavar="K", help="conditional model: every image of class K")
    classes.add_argument("--classes", metavar="LIST", help="conditional model: these classes (e.g. 0,3,7), one row "
                         "each, the same latents in every row")
    classes.add_argument("--class-grid", action="store_true", help="conditional model: every class, one row each")
    return parser.parse_args(argv)


def chosen_classes(args: argparse.Namespace, num_classes: int | None) -> list[int] | None:
    """The classes asked for (None: none asked; a conditional model then draws labels uniformly); one-line
    UserErrors for classes an unconditional or smaller model does not have."""
    option, text = next(((o, t) for o, t in (("--class", args.class_), ("--classes", args.classes),
                                              ("--class-grid", "all" if args.class_grid else None))
                         if t is not None), (None, None))  # an empty --class "" is an error, not "no class asked"
    if option is None:
        return None
    if num_classes is None:
        raise UserError(f"{option}: this checkpoint's model is unconditional (no model.num_classes); sample it "
                        "without class options")
    if text == "all":
        return list(range(num_classes))
    try:
        classes = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option} {text!r}: give class indices like 3 or 0,3,7") from None
    bad = [k for k in classes if not 0 <= k < num_classes]
    if bad:
        raise UserError(f"{option} {text!r}: class {bad[0]} does not exist; the model has classes 0..{num_classes - 1}")
    if len(set(classes)) != len(classes):
        raise UserError(f"{option} {text!r}: a class is listed twice; list each once")
    return classes


def inputs(model: GAN, num: int, seed: int, classes: list[int] | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Latents and labels: ``num`` latents of ``seed`` (labels drawn uniformly after them for a conditional model),
    or, for ``classes``, ``ceil(num / len(classes))`` latents repeated for each class (class_grid_inputs' rows)."""
    if classes is None:
        noise = torch.Generator().manual_seed(seed)
        z = model.sample_z(num, noise)  # drawn at once: batch-size-free
        return z, model.sample_labels(num, noise)
    per_class = math.ceil(num / len(classes))
    z, y = class_grid_inputs(model, per_class, seed)
    rows = torch.cat([torch.arange(k * per_class, (k + 1) * per_class) for k in classes])
    return z[rows.to(z.device)], y[rows.to(y.device)]


def check_out(out: Path, folder: bool) -> None:
    """UserError unless ``--out`` can take the grid (a file) or, with ``folder``, the images (a folder, created if
    missing): checked before sampling, which may take long, rather than failing once the images are made."""
    option = f"--out {str(out)!r}"
    if folder and out.exists() and not out.is_dir():
        raise UserError(f"{option} is a file; with --folder pass a folder (created if missing)")
    if not folder and out.is_dir():
        raise UserError(f"{option} is a folder; name the grid file, e.g. {out / 'samples.png'}, or add --folder to "
                        "write one PNG per image into that folder")
    if not folder and out.suffix.lower() not in Image.registered_extensions():
        raise UserError(f"{option} has no image extension; name the grid e.g. {out.stem or 'samples'}.png, "
                        "or add --folder to write one PNG per image into that folder")
    check_writable_folder(out if folder else out.parent, option)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    at_least("--num", args.num, 1)
    at_least("--batch-size", args.batch_size, 1)
    seed_in_range("--seed", args.seed)
    out = Path(args.out or ("samples" if args.folder else "samples.png"))
    check_out(out, args.folder)
    model = load_gan(args.ckpt, map_location=resolve_device(args.device))
    classes = chosen_classes(args, model.num_classes)
    ema = not args.no_ema and model.generator_ema is not None
    z_all, y_all = inputs(model, args.num, args.seed, classes)
    total = len(z_all)
    digits = max(6, len(str(total - 1)))
    images, index = [], 0
    batches = z_all.split(args.batch_size)
    labels = [None] * len(batches) if y_all is None else y_all.split(args.batch_size)
    for z, y in track(list(zip(batches, labels, strict=True)), description=f"sampling {total}",
                      disable=len(batches) < 2):
        x = model.generate(z, y, ema=ema).cpu()
        if not args.folder:
            images.append(x)
            continue
        for i, image in enumerate(x):
            folder = out if y is None else out / str(int(y[i]))  # a conditional model: one subfolder per class
            folder.mkdir(parents=True, exist_ok=True)
            save_image(image, folder / f"{index:0{digits}d}.png", normalize=True, value_range=(-1, 1))
            index += 1
    if not args.folder:
        rows = classes is not None and len(classes) > 1
        save_grid(torch.cat(images), out, nrow=total // len(classes) if rows else None)
    what = "EMA generator" if ema else "generator"
    labelled = "" if y_all is None else (
        ", labels drawn uniformly" if classes is None else f", classes {','.join(map(str, classes))}")
    print(f"wrote {total} images ({what}, g_step {model.g_step}, seed {args.seed}{labelled}) to {out}")
    return 0
