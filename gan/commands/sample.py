"""``gan sample CKPT --num N --out PATH``: images from a trained generator, as one PNG grid or (``--folder``) a
folder of N numbered PNG files (e.g. for FID tools). The EMA generator when the run has one (``--no-ema``: the raw
generator), as ``gan eval`` and the training's sample grids. Same ``--seed`` and checkpoint, same images."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image
from rich.progress import track
from torchvision.utils import save_image

from gan.callbacks import save_grid
from gan.errors import UserError
from gan.training.module import load_gan
from gan.utils.devices import resolve_device
from gan.utils.validate import at_least


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gan sample", description=__doc__)
    parser.add_argument("ckpt", help="checkpoint from gan fit, e.g. checkpoints/<run>/ckpt/last.ckpt")
    parser.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--out", default=None, help="output PNG or, with --folder, a folder")
    parser.add_argument("--folder", action="store_true", help="write N separate PNG files into --out")
    parser.add_argument("--no-ema", action="store_true", help="use the raw generator even when an EMA one exists")
    parser.add_argument("--seed", type=int, default=0, help="latent noise seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=256, help="images generated at once (default 256)")
    parser.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu or cuda[:i]")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    at_least("--num", args.num, 1)
    at_least("--batch-size", args.batch_size, 1)
    out = Path(args.out or ("samples" if args.folder else "samples.png"))
    if args.folder and out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file; with --folder pass a folder (created if missing)")
    if not args.folder and out.suffix.lower() not in Image.registered_extensions():
        raise UserError(f"--out {str(out)!r} has no image extension; name the grid e.g. {out.stem or 'samples'}.png, "
                        "or add --folder to write one PNG per image into that folder")
    model = load_gan(args.ckpt, map_location=resolve_device(args.device))
    ema = not args.no_ema and model.generator_ema is not None
    z_all = model.sample_z(args.num, torch.Generator().manual_seed(args.seed))  # drawn at once: batch-size-free
    images, index = [], 0
    batches = z_all.split(args.batch_size)
    for z in track(batches, description=f"sampling {args.num}", disable=len(batches) < 2):
        x = model.generate(z, ema=ema).cpu()
        if not args.folder:
            images.append(x)
            continue
        out.mkdir(parents=True, exist_ok=True)
        digits = max(6, len(str(args.num - 1)))
        for image in x:
            save_image(image, out / f"{index:0{digits}d}.png", normalize=True, value_range=(-1, 1))
            index += 1
    if not args.folder:
        save_grid(torch.cat(images), out)
    what = "EMA generator" if ema else "generator"
    print(f"wrote {args.num} images ({what}, g_step {model.g_step}, seed {args.seed}) to {out}")
    return 0
