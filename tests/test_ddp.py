"""Two-process DDP on the CPU (gloo) through Lightning's strategy: both ranks end with identical weights and buffers
(buffers such as G's BatchNorm statistics follow rank 0, as DDP's broadcast_buffers does)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import pytorch_lightning as pl
    import torch
    sys.path.insert(0, sys.argv[2])
    from conftest import TINY_DATA, TINY_MODEL
    from gan.data import GANDataModule
    from gan.training.module import GAN

    num_classes = None if sys.argv[3] == "none" else int(sys.argv[3])
    pl.seed_everything(0, verbose=False)
    model = GAN(**TINY_MODEL, num_classes=num_classes)
    init = {k: v.clone() for k, v in model.generator.state_dict().items()}
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_find_unused_parameters_true",
        max_epochs=-1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=GANDataModule(**TINY_DATA, num_classes=num_classes))
    torch.save({"g_step": model.g_step, "state": model.state_dict(), "init": init,
                "consumed": trainer.train_dataloader.consumed},
               Path(sys.argv[1]) / f"rank{trainer.global_rank}.pt")
""")


@pytest.mark.parametrize("num_classes", ["none", "3"], ids=["unconditional", "conditional"])
def test_two_rank_ddp_keeps_weights_identical(tmp_path, num_classes):
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    tests_dir = str(Path(__file__).parent)
    result = subprocess.run([sys.executable, str(script), str(tmp_path), tests_dir, num_classes], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["g_step"] == r1["g_step"] == 4
    assert r0["consumed"] == r1["consumed"] == 8  # each rank drew its own n_dis batches per G step
    assert r0["state"].keys() == r1["state"].keys()
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), key
    assert any(not torch.equal(v, r0["state"][f"generator.{k}"]) for k, v in r0["init"].items())
