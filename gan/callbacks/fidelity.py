"""FID (and IS / KID when asked) during training, on the generator-step schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint

from gan.callbacks.checkpoint import GStepCheckpoint
from gan.callbacks.schedule import GStepCallback
from gan.errors import UserError
from gan.metrics import EVAL_SEED, INCEPTION, GeneratorAdapter, Reference, compute_metrics, resolve_weights
from gan.metrics.protocols import resolve_protocol
from gan.metrics.shards import Shard
from gan.runs.layout import FIDELITY_LOG, append_jsonl
from gan.training.loggers import send_metrics
from gan.utils.validate import at_least


class FidelityCallback(GStepCallback):
    """Every ``every_n_g_steps`` generator steps (and at the last one), score the generator with
    :func:`gan.metrics.compute_metrics` against cached reference statistics of the training data.

    In a distributed run every rank generates and extracts the features of its share of the images and rank 0
    scores them (:mod:`gan.metrics.shards`: the numbers of a single-process evaluation); the metrics go to every
    logger as ``eval/fid``, ``eval/is_mean``, ``eval/kid_mean``... with ``step = g_step`` and to
    ``<run>/fidelity.jsonl`` with their protocol and weights; ``best_fid.ckpt`` is kept beside the other
    checkpoints. A class-conditional GAN's images get labels drawn uniformly by :class:`GeneratorAdapter` (seeded
    with ``seed``, stated in the protocol), as ``gan eval`` draws them.

    Args:
        every_n_g_steps: evaluation period in generator steps.
        protocol: a named protocol of :data:`gan.metrics.PROTOCOLS` (``paper``, ``default``), recorded with each
            result; ``num_fake`` / ``num_real`` override its counts (the result then says ``custom``).
        num_fake: generated images per evaluation (default 5000 without a protocol); num_real: reference images
            (None: the whole split).
        dataset, split, root: the reference set (None: the training datamodule's name / split / root).
        isc, kid: also compute Inception Score / KID (IS needs weights with a classifier, not ``offline``).
        inception_weights: ``default`` (torch-fidelity's download), ``offline`` or a weights file.
        feature_extractor: a torch-fidelity registered extractor (tests register a tiny one).
        seed: noise seed of the generated set (the same z at every evaluation, so curves are comparable).
        ema: score the EMA generator when the module has one.
        dirpath: where ``best_fid.ckpt`` goes (None: the checkpoint callback's folder, else ``<run>/ckpt``).
    """

    def __init__(
        self,
        every_n_g_steps: int = 5000,
        protocol: str | None = None,
        num_fake: int | None = None,
        num_real: int | None = None,
        dataset: str | None = None,
        split: str | None = None,
        root: str | None = None,
        isc: bool = False,
        kid: bool = False,
        kid_subset_size: int = 1000,
        inception_weights: str = "default",
        feature_extractor: str = INCEPTION,
        seed: int = EVAL_SEED,
        batch_size: int = 64,
        ema: bool = True,
        save_best: bool = True,
        dirpath: str | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__(every_n_g_steps)
        self.protocol, num_fake, num_real = resolve_protocol(protocol, num_fake, num_real, (5000, None),
                                                             "FidelityCallback.protocol")
        for field, value, minimum in (("num_fake", num_fake, 2), ("num_real", num_real, 2),
                                      ("kid_subset_size", kid_subset_size, 1),
                                      ("batch_size", batch_size, 1)):  # 2: a covariance needs two samples
            at_least(f"FidelityCallback.{field}", value, minimum)
        self.num_fake, self.num_real = num_fake, num_real
        self.dataset, self.split, self.root = dataset, split, root
        self.isc, self.kid, self.kid_subset_size = isc, kid, kid_subset_size
        self.feature_extractor = feature_extractor
        self.weights, self.seed, self.batch_size, self.ema = inception_weights, seed, batch_size, ema
        self.save_best, self.dirpath, self.verbose = save_best, dirpath, verbose
        self.best_fid, self.best_step = float("inf"), -1

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Fail now, not hours into training, when the weights cannot be had or cannot give IS. Every rank
        extracts features, so every rank gets the weights: each machine's first process fetches them first."""
        if self.feature_extractor != INCEPTION:
            return
        if trainer.local_rank == 0:
            self._check_weights(trainer)
        trainer.strategy.barrier("FidelityCallback weights")  # the machine's other processes find them cached
        if trainer.local_rank != 0:
            self._check_weights(trainer)

    def _check_weights(self, trainer: pl.Trainer) -> None:
        weights = resolve_weights(self.weights, verbose=self.verbose and trainer.is_global_zero)
        if self.isc and not weights.has_logits:
            raise UserError(f"FidelityCallback: isc needs Inception weights with a classifier; the "
                            f"{weights.kind} weights have none: set isc: false or inception_weights: default")

    def on_g_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.evaluate(trainer, pl_module)

    # ---- one evaluation -------------------------------------------------------------------------------------
    def reference(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Reference:
        return Reference.from_training_data(
            getattr(getattr(trainer, "datamodule", None), "hparams", None), pl_module.image_size, pl_module.channels,
            self.num_real, dataset=self.dataset, split=self.split, root=self.root, field="FidelityCallback dataset",
        )

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> float | None:
        step = int(pl_module.g_step)
        result = compute_metrics(  # every rank its share of the images; rank 0 scores
            GeneratorAdapter.from_gan(pl_module, self.ema), self.reference(trainer, pl_module),
            num_fake=self.num_fake, isc=self.isc, kid=self.kid, kid_subset_size=self.kid_subset_size,
            weights=self.weights, feature_extractor=self.feature_extractor, seed=self.seed,
            batch_size=self.batch_size, device=pl_module.device, verbose=self.verbose and trainer.is_global_zero,
            shard=Shard.of(trainer),
        )
        fid = None
        if trainer.is_global_zero:
            result["protocol"] = {"name": self.protocol, **result["protocol"]}
            fid = result["metrics"]["fid"]
            self.record(trainer, step, result)
        fid = trainer.strategy.broadcast(fid, src=0)
        if fid < self.best_fid:
            self.best_fid, self.best_step = fid, step
            if self.save_best:
                trainer.save_checkpoint(self.best_path(trainer), weights_only=False)
        return fid

    def record(self, trainer: pl.Trainer, step: int, result: dict) -> None:
        send_metrics(trainer.loggers, {"g_step": step, **{f"eval/{k}": v for k, v in result["metrics"].items()}}, step)
        append_jsonl(Path(trainer.default_root_dir) / FIDELITY_LOG, {"g_step": step, **result})
        if self.verbose:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in result["metrics"].items())
            p = result["protocol"]
            print(f"[g_step {step}] {shown}  ({p['num_fake']} fake vs {p['reference']} n={p['num_real_used']}, "
                  f"{result['weights']['ident']}, {result['seconds']:.0f}s)", flush=True)

    def best_path(self, trainer: pl.Trainer) -> Path:
        if self.dirpath:
            return Path(self.dirpath) / "best_fid.ckpt"
        for callback in trainer.callbacks:  # beside the checkpoints (GStepCheckpoint, Lightning's ModelCheckpoint)
            if isinstance(callback, GStepCheckpoint | Checkpoint) and getattr(callback, "dirpath", None):
                return Path(callback.dirpath) / "best_fid.ckpt"
        return Path(trainer.default_root_dir) / "ckpt" / "best_fid.ckpt"

    # ---- resume ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"best_fid": self.best_fid, "best_step": self.best_step, "last_step": self.last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_fid = float(state_dict["best_fid"])
        self.best_step, self.last_step = int(state_dict["best_step"]), int(state_dict["last_step"])
