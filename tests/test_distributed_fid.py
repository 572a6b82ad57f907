"""FID / IS / KID in a distributed run: two processes (CPU, gloo, Lightning's DDP strategy) each generate and extract
their share of the images (whole batches, round robin), rank 0 scores, and the result equals a single process's
metrics of the same generator, seed and protocol; a conditional generator's labels too (by global sample index)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gan.metrics import EVAL_SEED, GeneratorAdapter, Reference, compute_metrics

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import pytorch_lightning as pl
    import torch
    sys.path.insert(0, sys.argv[2])
    from conftest import TINY_DATA, TINY_EXTRACTOR, TINY_MODEL
    from gan.callbacks.fidelity import FidelityCallback
    from gan.data import GANDataModule
    from gan.metrics import GeneratorAdapter
    from gan.training.module import GAN

    generated = []  # batch sizes (and labels) this process generated for the evaluation
    forward = GeneratorAdapter.forward
    GeneratorAdapter.forward = lambda self, z, y=None: generated.append(len(z) if y is None else y.tolist()) or \
        forward(self, z, y)
    num_classes = None if sys.argv[3] == "none" else int(sys.argv[3])

    pl.seed_everything(0, verbose=False)
    model = GAN(**TINY_MODEL, num_classes=num_classes)
    fidelity = FidelityCallback(every_n_g_steps=4, num_fake=10, batch_size=4, feature_extractor=TINY_EXTRACTOR,
                                isc=True, kid=True, kid_subset_size=5, save_best=False, verbose=False)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_find_unused_parameters_true", max_epochs=-1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, default_root_dir=sys.argv[1], callbacks=[fidelity],
    )
    trainer.fit(model, datamodule=GANDataModule(**TINY_DATA, num_classes=num_classes))
    torch.save({"generator": model.generator.state_dict(), "generated": generated, "g_step": model.g_step},
               Path(sys.argv[1]) / f"rank{trainer.global_rank}.pt")
""")


@pytest.mark.parametrize("num_classes", [None, 3])
def test_two_processes_share_the_evaluation_and_match_one_process(tmp_path, tiny_extractor, tiny_gan_factory,
                                                                  num_classes):
    script = tmp_path / "ddp_fid.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "GAN_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script), str(tmp_path), str(Path(__file__).parent),
                             str(num_classes).lower()],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["g_step"] == ranks[1]["g_step"] == 4
    # 10 images in batches of 4: rank 0 makes batches 0 and 2 (4 + 2 images), rank 1 batch 1 (4 images)
    model = tiny_gan_factory(num_classes=num_classes)
    model.generator.load_state_dict(ranks[0]["generator"])
    adapter = GeneratorAdapter.from_gan(model, ema=False)
    if num_classes is None:
        assert ranks[0]["generated"] == [4, 2] and ranks[1]["generated"] == [4]
    else:  # each batch's labels are those of its global sample indices, whichever rank made it
        labels = adapter.labels(10, EVAL_SEED).tolist()
        assert ranks[0]["generated"] == [labels[0:4], labels[8:10]] and ranks[1]["generated"] == [labels[4:8]]
        assert len(set(labels)) == 3
    (line,) = (tmp_path / "fidelity.jsonl").read_text().splitlines()
    recorded = json.loads(line)
    assert recorded["g_step"] == 4 and recorded["protocol"]["num_fake"] == 10

    single = compute_metrics(
        adapter, Reference.from_data("synthetic", "train", 8, 1, num_classes=num_classes),
        num_fake=10, isc=True, kid=True, kid_subset_size=5, batch_size=4, feature_extractor=tiny_extractor,
        seed=EVAL_SEED, cache=tmp_path / "cache", verbose=False,
    )
    assert recorded["protocol"] == {"name": "custom", **single["protocol"]}  # the callback names its protocol
    # the same images, batch for batch, in the same order (IS splits and KID subsets depend on it): bit-equal
    assert recorded["metrics"] == single["metrics"] and set(single["metrics"]) >= {"fid", "is_mean", "kid_mean"}
