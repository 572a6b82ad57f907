"""`gan fit --ckpt_path` continues exactly: 2k G steps straight == k steps, then resumed to 2k (same weights, EMA,
optimizer states, ConvNorm/SN buffers), across a data-pass boundary, with LR decay and EMA on."""

import csv

import pytest
import torch
import yaml

from gan.cli import main

CONFIG = {
    "seed_everything": 0,
    "model": {"arch": "cnn", "z_dim": 8, "g_width": 4, "d_width": 4, "norm": "convnorm+spectral", "n_dis": 2,
              "max_g_steps": 4, "ema": True, "ema_decay": 0.9, "log_every_n_g_steps": 1},
    "data": {"name": "synthetic", "image_size": 16, "channels": 1, "batch_size": 4, "num_workers": 0,
             "num_samples": 20},  # 5 batches per pass: 8 batches cross into pass 2
    "run": {"sample_every": 2, "ckpt_every": 2, "sample_num": 4},
    "trainer": {"accelerator": "cpu", "enable_model_summary": False, "enable_progress_bar": False},
}


@pytest.mark.parametrize("num_classes", [None, 3], ids=["unconditional", "conditional"])
def test_resumed_run_ends_with_identical_weights(tmp_path, num_classes):
    config = tmp_path / "tiny.yaml"
    model = {**CONFIG["model"], "num_classes": num_classes}  # conditional: labels from data and latent stream
    config.write_text(yaml.safe_dump({**CONFIG, "model": model, "run": {**CONFIG["run"], "out_dir": str(tmp_path)}}))
    assert main(["fit", "--config", str(config), "--run.name", "straight"]) == 0
    half = tmp_path / "straight" / "ckpt" / "g0000002.ckpt"
    assert main(["fit", "--config", str(config), "--run.name", "resumed", "--ckpt_path", str(half)]) == 0
    a, b = (torch.load(tmp_path / run / "ckpt" / "last.ckpt", weights_only=False) for run in ("straight", "resumed"))
    assert a["g_step"] == b["g_step"] == 4
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"]):
        for state_a, state_b in zip(opt_a["state"].values(), opt_b["state"].values()):
            assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"consumed": 8}]
    assert (tmp_path / "resumed" / "samples" / "g0000004.png").is_file()


def test_resuming_into_the_same_run_keeps_its_earlier_log_rows(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "run": {**CONFIG["run"], "out_dir": str(tmp_path), "name": "run"}}))
    assert main(["fit", "--config", str(config), "--model.max_g_steps", "2"]) == 0
    last = tmp_path / "run" / "ckpt" / "last.ckpt"
    assert main(["fit", "--config", str(config), "--ckpt_path", str(last)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    assert [int(r["g_step"]) for r in rows] == [1, 2, 3, 4]
