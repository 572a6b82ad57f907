"""``gan fit --config FILE``: train a GAN with LightningCLI (``--print_config``, dotted overrides such as
``--model.norm convnorm``, ``--ckpt_path`` to resume).

The run goes to ``<run.out_dir>/<run.name>/`` (default ``checkpoints/<data>-<arch>-<norm>``): ``config.yaml``,
``ckpt/``, ``logs/`` (TensorBoard + metrics.csv), ``samples/`` (see gan.runs.layout). Everything is checked before
anything is written: the settings' ranges, that the run folder is new or resumed from its own checkpoint, that the
checkpoint fits the model, and that no other process trains there (gan/runs/folder.py). Ctrl-C or SIGTERM saves
``last.ckpt`` at the next step boundary and exits non-zero (130 / 143); a diverged run stops with exit code 2 and
its last finite checkpoint kept.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import signal
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jsonargparse import Namespace
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import TensorBoardLogger

from gan.callbacks import GStepCheckpoint, GStepProgressBar, SampleGrid
from gan.callbacks.interrupt import StopOnSignal
from gan.data import GANDataModule
from gan.errors import UserError
from gan.models import count_parameters
from gan.runs.checkpoints import SafeCheckpointIO, check_fits
from gan.runs.folder import RunLock, check_target, run_folder
from gan.training.divergence import DivergedError
from gan.training.loggers import AppendingCSVLogger
from gan.training.module import GAN, read_checkpoint
from gan.utils.validate import MAX_GLOBAL_SEED, at_least, seed_in_range


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


# Trainer options gan fit sets itself or cannot honour, each with a test for the values that leave it unset and the
# reason: the run folder fixes where logs and files go, and G and D are stepped by hand (manual optimization), for
# which Lightning neither clips gradients (a gradient_clip_val <= 0 means no clipping) nor accumulates batches.
OWNED_TRAINER_OPTIONS = {
    "logger": (lambda v: v is None or v is True, "gan fit logs to <run folder>/logs (TensorBoard and metrics.csv)"),
    "default_root_dir": (lambda v: v is None, "gan fit writes into the run folder; set run.out_dir / run.name"),
    "gradient_clip_val": (lambda v: v is None or v <= 0,
                          "G and D are optimized by hand, which Lightning's clipping does not support"),
    "accumulate_grad_batches": (lambda v: v == 1,
                                "G and D are optimized by hand, which Lightning's accumulation does not support"),
}


def check_trainer_options(trainer: Namespace) -> None:
    """Refuse, before anything is written, a trainer option that gan fit would silently override (``logger``,
    ``default_root_dir``) or that Lightning would refuse mid-setup (clipping, accumulation)."""
    for option, (unset, why) in OWNED_TRAINER_OPTIONS.items():
        value = trainer.get(option)
        if not unset(value):
            raise UserError(f"trainer.{option}={value!r} is not supported: {why}; remove it from the config")


class GANCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(RunOptions, "run")
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="resume exactly from this checkpoint (e.g. checkpoints/<run>/ckpt/last.ckpt)")
        parser.link_arguments("data.image_size", "model.image_size")
        parser.link_arguments("data.channels", "model.channels")
        parser.link_arguments("model.num_classes", "data.num_classes")  # a conditional model checks the labels

    def parse_arguments(self, parser: LightningArgumentParser, args: list[str] | None) -> None:
        super().parse_arguments(parser, args)
        seed = self.config.get("seed_everything")  # checked here: Lightning seeds right after parsing
        if seed is not None and not isinstance(seed, bool):  # true: Lightning draws one
            seed_in_range("seed_everything", seed, MAX_GLOBAL_SEED)

    def before_instantiate_classes(self) -> None:
        cfg = self.config
        check_trainer_options(cfg.trainer)
        name = cfg.run.name or f"{cfg.data.name}-{cfg.model.arch}-{cfg.model.norm}".replace("+", "-")
        self.run_dir = run_folder(cfg.run.out_dir, name)
        for key in ("sample_every", "sample_num", "ckpt_every"):
            at_least(f"run.{key}", getattr(cfg.run, key), 1)
        self.resume_from = read_checkpoint(cfg.ckpt_path) if cfg.ckpt_path else None
        check_target(self.run_dir, cfg.ckpt_path)
        if cfg.trainer.strategy == "ddp":  # G and D steps leave the other network's parameters unused
            cfg.trainer.strategy = "ddp_find_unused_parameters_true"
        run = cfg.run
        self.sample_grid = SampleGrid(self.run_dir / "samples", run.sample_every, run.sample_num, cfg.model.seed)
        self.checkpoint = GStepCheckpoint(self.run_dir / "ckpt", cfg.run.ckpt_every)
        self.stop_on_signal = StopOnSignal()  # before the checkpoint callback, which saves when it stops training
        bar = [GStepProgressBar()] if cfg.trainer.enable_progress_bar is not False else []
        self.trainer_defaults["callbacks"] = [*bar, self.stop_on_signal, self.sample_grid, self.checkpoint]

    def instantiate_trainer(self, **kwargs):
        loggers = [TensorBoardLogger(self.run_dir, name="logs", version=""),
                   AppendingCSVLogger(self.run_dir, name="logs", version="")]
        trainer = super().instantiate_trainer(default_root_dir=str(self.run_dir), logger=loggers, **kwargs)
        trainer.strategy.checkpoint_io = SafeCheckpointIO()  # temp files beside the target, loads as plain data
        return trainer

    def claim_run_folder(self) -> RunLock | None:
        """The last check (the checkpoint loads into the configured model), then, still before anything is written:
        lock the run folder (global rank 0, for the whole launch), check it again under the lock (another process
        may have trained there meanwhile), and only then write ``config.yaml``."""
        if self.resume_from is not None:
            check_fits(self.model, dict(self.model.hparams), self.resume_from, self.config.ckpt_path)
        if not self.trainer.is_global_zero:
            return None
        lock = RunLock(self.run_dir)
        lock.acquire()
        try:
            check_target(self.run_dir, self.config.ckpt_path)
            (self.run_dir / "config.yaml").write_text(self.parser.dump(self.config, skip_none=False))
        except BaseException:
            lock.release()
            raise
        return lock


def last_finite_checkpoint(path: Path) -> str:
    """Where a diverged run's last good state is, for its error message."""
    if not path.is_file():
        return "No checkpoint was written."
    return f"Its last finite checkpoint is kept: {path} (G step {read_checkpoint(path).get('g_step')})."


UNWRITABLE = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM}


@contextlib.contextmanager
def writing_into(run_dir: Path) -> Iterator[None]:
    """A read-only run folder or a full disk as one line naming the folder and the cause (other OSErrors are bugs
    and keep their traceback)."""
    try:
        yield
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        raise UserError(f"run folder {run_dir}: cannot write {err.filename or 'a file'} ({err.strerror}); free space "
                        "or make the folder writable, then run the same command again (checkpoints already written "
                        "are kept)") from None


NON_FINITE = {"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def numeric_fields() -> set[str]:
    """The dotted config fields that hold numbers (``model.lr_g``, ``run.ckpt_every``...), read from the
    signatures of the classes ``gan fit`` builds, so a text field such as ``run.name`` may be any word."""
    fields = set()
    for section, signature in (("model", inspect.signature(GAN.__init__)),
                               ("data", inspect.signature(GANDataModule.__init__)),
                               ("run", inspect.signature(RunOptions))):
        for name, parameter in signature.parameters.items():
            annotation = str(parameter.annotation)
            if ("float" in annotation or "int" in annotation) and "str" not in annotation:
                fields.add(f"{section}.{name}")
    return fields


def refuse_non_finite(argv: list[str]) -> None:
    """``--model.lr_g nan`` (or ``inf``) as one line with a fix: the parser would reject the text with its usage."""
    numeric = numeric_fields()
    for i, arg in enumerate(argv):
        key, _, value = arg.partition("=")
        if not value and i + 1 < len(argv):
            value = argv[i + 1]
        if key.startswith("--") and key[2:] in numeric and value.strip().lower() in NON_FINITE:
            raise UserError(f"{key[2:]}={value} is not a finite number; give one, e.g. {key} 0.0002")


def main(argv: list[str]) -> int:
    # `gan fit` passes its own argv on purpose, and the dataloader_iter step is how n_dis fresh batches are drawn
    for message in ("LightningCLI's args parameter", "You are using the `dataloader_iter`", "Found `dataloader_iter`"):
        warnings.filterwarnings("ignore", message=message)
    refuse_non_finite(argv)
    cli = GANCLI(
        GAN, GANDataModule, args=argv, run=False, save_config_callback=None, auto_configure_optimizers=False,
        trainer_defaults=dict(TRAINER_DEFAULTS), seed_everything_default=0,
        parser_kwargs={"prog": "gan fit", "description": __doc__},
    )
    model, trainer = cli.model, cli.trainer
    h = model.hparams
    model.check_trainer(trainer)  # switches this machine cannot run (e.g. CUDA graphs on a CPU) stop here,
    cli.datamodule.setup("fit")  # as do a missing dataset or a damaged image, before the run folder is touched
    with writing_into(cli.run_dir):
        lock = cli.claim_run_folder()
    try:
        if trainer.is_global_zero:
            print(f"run: {cli.run_dir}")
            print(f"generator     {h.arch:<6} {count_parameters(model.generator):>12,} parameters")
            print(f"discriminator {h.arch:<6} {count_parameters(model.discriminator):>12,} parameters  "
                  f"(norm: {h.norm})")
        with writing_into(cli.run_dir):
            trainer.fit(model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path, weights_only=True)
    except DivergedError as err:
        raise DivergedError(f"{err} {last_finite_checkpoint(cli.checkpoint.last_path)}") from None
    finally:
        if lock is not None:
            lock.release()
    stop = cli.stop_on_signal
    if stop.stopped:
        if trainer.is_global_zero:
            last = cli.checkpoint.last_path
            why = stop.received.name if stop.received else "a signal on another rank"
            print(f"interrupted by {why} after G step {model.g_step}; saved {last}, resume with --ckpt_path {last}",
                  file=sys.stderr)
        return 128 + int(stop.received or signal.SIGTERM)
    if trainer.is_global_zero:
        print(f"trained {model.g_step} G steps ({trainer.global_step} optimizer steps)")
        for what, path in (("checkpoint", cli.checkpoint.last_path), ("samples", cli.sample_grid.last_path)):
            if path is not None and Path(path).is_file():  # a resume already at max_g_steps writes neither
                print(f"{what + ':':<12}{path}")
        print(f"logs:       {cli.run_dir / 'logs'} (metrics.csv; tensorboard --logdir {cli.run_dir / 'logs'})")
        print(f"config:     {cli.run_dir / 'config.yaml'}")
    return 0
