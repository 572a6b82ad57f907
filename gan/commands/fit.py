"""``gan fit --config FILE``: train a GAN with LightningCLI (``--print_config``, dotted overrides such as
``--model.norm convnorm``, ``--ckpt_path`` to resume).

The run goes to ``<run.out_dir>/<run.name>/`` (default ``checkpoints/<data>-<arch>-<norm>``): ``config.yaml``,
``ckpt/``, ``logs/`` (TensorBoard + metrics.csv), ``samples/`` (see gan.runs). Starting a new run in a folder
that already holds checkpoints is refused, so a finished run is never overwritten by accident.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from gan.callbacks import GStepCheckpoint, GStepProgressBar, SampleGrid
from gan.data import GANDataModule
from gan.errors import UserError
from gan.loggers import AppendingCSVLogger
from gan.models import count_parameters
from gan.module import GAN, read_checkpoint


@dataclass
class RunOptions:
    """Where the run is written and its G-step schedules.

    Args:
        name: run folder name (default: <data.name>-<model.arch>-<model.norm>).
        out_dir: parent folder of runs.
        sample_every: write a fixed-z sample grid every this many G steps (and at the end).
        sample_num: images in each grid.
        ckpt_every: write ckpt/g<step>.ckpt and ckpt/last.ckpt every this many G steps (last.ckpt also at the end).
    """

    name: str | None = None
    out_dir: str = "checkpoints"
    sample_every: int = 1000
    sample_num: int = 64
    ckpt_every: int = 5000


TRAINER_DEFAULTS = {
    "max_epochs": -1,  # the data stream is endless; model.max_g_steps stops training
    "devices": 1,
    "log_every_n_steps": 1,
    "use_distributed_sampler": False,  # gan.data shards the stream per rank itself
    "enable_checkpointing": False,  # GStepCheckpoint follows G steps instead
    "num_sanity_val_steps": 0,
}


class GANCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(RunOptions, "run")
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="resume exactly from this checkpoint (e.g. checkpoints/<run>/ckpt/last.ckpt)")
        parser.link_arguments("data.image_size", "model.image_size")
        parser.link_arguments("data.channels", "model.channels")

    def before_instantiate_classes(self) -> None:
        cfg = self.config
        name = cfg.run.name or f"{cfg.data.name}-{cfg.model.arch}-{cfg.model.norm}".replace("+", "-")
        self.run_dir = Path(cfg.run.out_dir) / name
        if cfg.ckpt_path:
            read_checkpoint(cfg.ckpt_path)
        elif (self.run_dir / "ckpt" / "last.ckpt").exists():
            raise UserError(
                f"run.name: {self.run_dir} already holds a run; resume it with --ckpt_path "
                f"{self.run_dir / 'ckpt' / 'last.ckpt'} or start a new one with --run.name NEW_NAME"
            )
        for key, value in (("sample_every", cfg.run.sample_every), ("ckpt_every", cfg.run.ckpt_every)):
            if value < 1:
                raise UserError(f"run.{key}={value} must be >= 1")
        if cfg.trainer.strategy == "ddp":  # G and D steps leave the other network's parameters unused
            cfg.trainer.strategy = "ddp_find_unused_parameters_true"
        run = cfg.run
        self.sample_grid = SampleGrid(self.run_dir / "samples", run.sample_every, run.sample_num, cfg.model.seed)
        self.checkpoint = GStepCheckpoint(self.run_dir / "ckpt", cfg.run.ckpt_every)
        bar = [GStepProgressBar()] if cfg.trainer.enable_progress_bar is not False else []
        self.trainer_defaults["callbacks"] = [*bar, self.sample_grid, self.checkpoint]
        self._save_config()

    @rank_zero_only
    def _save_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(self.parser.dump(self.config, skip_none=False))

    def instantiate_trainer(self, **kwargs):
        loggers = [TensorBoardLogger(self.run_dir, name="logs", version=""),
                   AppendingCSVLogger(self.run_dir, name="logs", version="")]
        return super().instantiate_trainer(default_root_dir=str(self.run_dir), logger=loggers, **kwargs)


def main(argv: list[str]) -> int:
    # `gan fit` passes its own argv on purpose, and the dataloader_iter step is how n_dis fresh batches are drawn
    for message in ("LightningCLI's args parameter", "You are using the `dataloader_iter`", "Found `dataloader_iter`"):
        warnings.filterwarnings("ignore", message=message)
    cli = GANCLI(
        GAN, GANDataModule, args=argv, run=False, save_config_callback=None, auto_configure_optimizers=False,
        trainer_defaults=dict(TRAINER_DEFAULTS), seed_everything_default=0,
        parser_kwargs={"prog": "gan fit", "description": __doc__},
    )
    model, trainer = cli.model, cli.trainer
    h = model.hparams
    if trainer.is_global_zero:
        print(f"run: {cli.run_dir}")
        print(f"generator     {h.arch:<6} {count_parameters(model.generator):>12,} parameters")
        print(f"discriminator {h.arch:<6} {count_parameters(model.discriminator):>12,} parameters  (norm: {h.norm})")
    trainer.fit(model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)
    if trainer.is_global_zero:
        print(f"trained {model.g_step} G steps ({trainer.global_step} optimizer steps)")
        print(f"checkpoint: {cli.checkpoint.last_path}")
        print(f"samples:    {cli.sample_grid.last_path}")
        print(f"logs:       {cli.run_dir / 'logs'} (metrics.csv; tensorboard --logdir {cli.run_dir / 'logs'})")
        print(f"config:     {cli.run_dir / 'config.yaml'}")
    return 0
