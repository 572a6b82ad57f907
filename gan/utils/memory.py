"""2 MB pages for large CPU tensors, which the ``gan`` command asks PyTorch for before it imports torch.

glibc gives large allocations (128 KB and up, the threshold rising to at most 32 MB) fresh memory from the kernel,
which maps it one 4 KB page at a time, zero-filled, on first write. Training allocates such tensors by the hundred per
step (activations, gradients, FFT buffers), so that mapping cost rivals the arithmetic: on this project's 2-core
CPU machine, 2 MB transparent huge pages made a 64->64 3x3 conv's forward + backward (batch 64, 64 px) about 30 %
faster and a ResNet SNGAN step about 15 % faster, with the same numbers out. PyTorch (2.2 and later) asks for them
on Linux for its allocations of 2 MB and more when ``THP_MEM_ALLOC_ENABLE=1``, read once at its first allocation,
hence before torch is imported. Setting the variable to 0 yourself keeps the kernel's 4 KB pages.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"
THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")  # the kernel's setting: [always], [madvise] or [never]


def request_huge_pages() -> None:
    """Ask PyTorch for huge pages on Linux unless the environment already says otherwise (no effect once torch
    has allocated, and none on other systems, or where the kernel's THP mode is ``never``)."""
    if sys.platform.startswith("linux"):
        os.environ.setdefault(HUGE_PAGES_ENV, "1")


def page_setting() -> str:
    """"2 MB pages" or "4 KB pages": what large CPU tensors get in a process started with this environment, for
    benchmark captions (page faults cost up to a third of a conv's time on a small CPU). It reads the environment
    now; a process that changed the variable after torch's first allocation gets what torch read then."""
    mode = THP_MODE.read_text() if sys.platform.startswith("linux") and THP_MODE.is_file() else "[never]"
    asked = os.environ.get(HUGE_PAGES_ENV) == "1"  # PyTorch takes "1" only (it warns on other values)
    return "2 MB pages" if "[always]" in mode or (asked and "[madvise]" in mode) else "4 KB pages"
