"""PNG figures (FID curves, spectral norms): one way to draw on a headless machine and write the file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def png_figure(path: Path, size: tuple[float, float] = (7.5, 4.5), legend_size: int = 7,
               legend_columns: int = 1) -> Iterator[Any]:
    """Matplotlib axes to draw on; when the block ends, the figure gets a light grid and a legend, is laid out and
    written to ``path`` (folders created) as a 120-dpi PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=120)
    try:
        yield ax
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # nothing drawn (e.g. no run has FID yet): no empty legend
            ax.legend(fontsize=legend_size, ncol=legend_columns)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
