"""Logging metrics: one call that reaches every logger, and a CSV logger that keeps a run's earlier rows (resuming
into the same run folder appends to ``metrics.csv``).

Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts, so a resumed run would lose the log of
everything before the checkpoint (and nothing written must be lost to a restart).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


# Lightning has no public switch to keep metrics.csv; these overrides use its private ``_check_log_dir_exists`` (the
# method that deletes the file), ``_fs`` and ``_experiment``, here only. tests/test_resume.py's metrics rows and the
# pin in tests/test_acceleration.py fail loudly if an upgrade renames them.
class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            self.metrics_keys = sorted(next(csv.reader(file), []))  # later rows extend the existing header


class AppendingCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` survives a restart: new rows are appended, the header widened if needed."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def send_metrics(loggers: Iterable[Logger], metrics: dict[str, float], step: int) -> None:
    """Log ``metrics`` to every logger against ``step`` (the G step) and flush them, so the files on disk are
    current whenever training stops."""
    for logger in loggers:
        logger.log_metrics(metrics, step=step)
        logger.save()
