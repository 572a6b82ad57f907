"""`gan fit` run layout and refusals, `gan sample` grid / folder / errors, all through the `gan` entry point."""

import csv

import pytest
import torch
import yaml
from PIL import Image

from gan.callbacks import save_grid
from gan.cli import main
from gan.training.module import load_gan

CONFIG = {
    "model": {"arch": "cnn", "z_dim": 8, "g_width": 4, "d_width": 4, "norm": "convnorm", "n_dis": 1,
              "max_g_steps": 3, "ema": True, "log_every_n_g_steps": 1},
    "data": {"name": "synthetic", "image_size": 16, "channels": 3, "batch_size": 4, "num_workers": 0,
             "num_samples": 16},
    "run": {"sample_every": 2, "ckpt_every": 2, "sample_num": 9},
    "trainer": {"accelerator": "cpu", "enable_model_summary": False, "enable_progress_bar": False},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    config = out / "tiny.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "run": {**CONFIG["run"], "out_dir": str(out)}}))
    assert main(["fit", "--config", str(config), "--model.norm", "spectral"]) == 0
    return config, out / "synthetic-cnn-spectral"


def test_fit_writes_the_run_layout(run, capsys):
    _, run_dir = run
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["norm"] == "spectral"
    assert {p.name for p in (run_dir / "ckpt").iterdir()} == {"g0000002.ckpt", "last.ckpt"}
    assert {p.name for p in (run_dir / "samples").iterdir()} == {"g0000002.png", "g0000003.png"}
    assert Image.open(run_dir / "samples" / "g0000003.png").size == (3 * 16 + 4 * 2, 3 * 16 + 4 * 2)
    rows = list(csv.DictReader(open(run_dir / "logs" / "metrics.csv")))
    assert [r["g_step"] for r in rows] == ["1", "2", "3"]
    assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "logs").iterdir())


def test_fit_refuses_to_overwrite_a_run_and_explains(run, capsys):
    config, run_dir = run
    before = (run_dir / "ckpt" / "last.ckpt").read_bytes()
    assert main(["fit", "--config", str(config), "--model.norm", "spectral"]) == 2
    assert "--ckpt_path" in capsys.readouterr().err
    assert (run_dir / "ckpt" / "last.ckpt").read_bytes() == before


@pytest.mark.parametrize("args,message", [
    (["--model.norm", "weight"], "norm='weight' is not a discriminator normalization"),
    (["--data.name", "cifar11"], "data.name='cifar11' is unknown"),
    (["--ckpt_path", "nowhere.ckpt"], "checkpoint 'nowhere.ckpt' does not exist"),
    (["--trainer.logger", "false"], "trainer.logger=False is not supported: gan fit logs to"),
    (["--trainer.default_root_dir", "elsewhere"], "trainer.default_root_dir='elsewhere' is not supported"),
    (["--trainer.gradient_clip_val", "1.0"], "trainer.gradient_clip_val=1.0 is not supported"),
    (["--trainer.accumulate_grad_batches", "2"], "trainer.accumulate_grad_batches=2 is not supported"),
    (["--data.seed", str(2**70)], f"data.seed={2**70} is out of range; use an integer from 0 to {2**62}"),
    (["--seed_everything", str(2**40)], f"seed_everything={2**40} is out of range"),
    (["--model.cuda_graphs", "true"], "model.cuda_graphs records CUDA graphs, which need a CUDA device"),
    (["--model.seed", str(2**70)], f"model.seed={2**70} is out of range"),
])
def test_fit_bad_input_is_one_line(run, capsys, args, message):
    config, _ = run
    assert main(["fit", "--config", str(config), "--run.name", "bad", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (config.parent / "bad").exists()  # refused before anything is written


def test_trainer_options_gan_fit_owns_are_allowed_at_their_unset_values():
    from jsonargparse import Namespace

    from gan.commands.fit import check_trainer_options

    check_trainer_options(Namespace(logger=True, default_root_dir=None, gradient_clip_val=0.0,
                                    accumulate_grad_batches=1))  # 0: no clipping, as Lightning reads it


def test_a_finished_run_resumed_lists_only_files_that_exist(run, capsys):
    """Resumed at max_g_steps into a new folder, nothing is trained or written: the summary must not name a
    checkpoint or samples there (it printed the fork's never-written last.ckpt and 'samples: None')."""
    config, run_dir = run
    capsys.readouterr()
    assert main(["fit", "--config", str(config), "--model.norm", "spectral", "--run.name", "fork",
                 "--ckpt_path", str(run_dir / "ckpt" / "last.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "trained 3 G steps" in out and "checkpoint:" not in out and "samples:" not in out
    assert not (config.parent / "fork" / "ckpt" / "last.ckpt").exists()


def test_fit_refuses_an_out_dir_below_a_file(run, capsys):
    config, _ = run
    assert main(["fit", "--config", str(config), "--run.out_dir", str(config / "runs")]) == 2
    assert f"{str(config)!r} is a file, not a folder" in capsys.readouterr().err


def test_fit_takes_a_model_seed_and_a_data_seed_that_differ(run, capsys):
    """Lightning merges the logged hparams of model and data and refused both holding a different 'seed'."""
    config, _ = run
    assert main(["fit", "--config", str(config), "--run.name", "seeds", "--model.seed", "1", "--data.seed", "2"]) == 0
    saved = yaml.safe_load((config.parent / "seeds" / "config.yaml").read_text())
    assert (saved["model"]["seed"], saved["data"]["seed"]) == (1, 2)


def test_print_config(run, capsys):
    config, _ = run
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(config), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["arch"] == "cnn" and printed["run"]["ckpt_every"] == 2


def test_sample_grid_and_folder(run, tmp_path, capsys):
    _, run_dir = run
    ckpt = str(run_dir / "ckpt" / "last.ckpt")
    assert main(["sample", ckpt, "--num", "4", "--out", str(tmp_path / "grid.png"), "--seed", "1"]) == 0
    assert Image.open(tmp_path / "grid.png").size == (2 * 16 + 3 * 2, 2 * 16 + 3 * 2)
    assert main(["sample", ckpt, "--num", "5", "--folder", "--out", str(tmp_path / "imgs"), "--batch-size", "2"]) == 0
    files = sorted(p.name for p in (tmp_path / "imgs").iterdir())
    assert files == [f"{i:06d}.png" for i in range(5)]
    assert Image.open(tmp_path / "imgs" / files[0]).size == (16, 16)
    assert main(["sample", ckpt, "--num", "5", "--folder", "--out", str(tmp_path / "again"), "--batch-size", "5"]) == 0
    assert (tmp_path / "again" / "000004.png").read_bytes() == (tmp_path / "imgs" / "000004.png").read_bytes()


def test_sample_uses_the_ema_generator_unless_told_not_to(run, tmp_path, capsys):
    _, run_dir = run
    checkpoint = torch.load(run_dir / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    checkpoint["state_dict"]["generator_ema.linear.bias"] += 1.0  # an EMA generator clearly unlike the raw one
    ckpt = tmp_path / "ema.ckpt"
    torch.save(checkpoint, ckpt)
    model = load_gan(ckpt)
    z = model.sample_z(4, torch.Generator().manual_seed(1))
    expected = {ema: save_grid(model.generate(z, ema=ema), tmp_path / f"expected-{ema}.png") for ema in (True, False)}
    assert expected[True].read_bytes() != expected[False].read_bytes()
    assert main(["sample", str(ckpt), "--num", "4", "--seed", "1", "--out", str(tmp_path / "default.png")]) == 0
    assert "(EMA generator," in capsys.readouterr().out
    assert (tmp_path / "default.png").read_bytes() == expected[True].read_bytes()  # as gan eval and the grids
    assert main(["sample", str(ckpt), "--num", "4", "--seed", "1", "--out", str(tmp_path / "raw.png"), "--no-ema"]) == 0
    assert (tmp_path / "raw.png").read_bytes() == expected[False].read_bytes()


def test_sample_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["sample", str(bad)]) == 2
    assert "is unreadable" in capsys.readouterr().err
