"""Training callbacks driven by the module's G-step counter (the rule: ``schedule.GStepCallback``): sample grids,
checkpoints, progress bar; FID (``fidelity``), spectral norms (``spectral``) and D's gradients (``gradients``)."""

from gan.callbacks.checkpoint import GStepCheckpoint
from gan.callbacks.progress import GStepProgressBar
from gan.callbacks.samples import SampleGrid, save_grid

__all__ = ["GStepCheckpoint", "GStepProgressBar", "SampleGrid", "save_grid"]
