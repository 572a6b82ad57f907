"""The ``gan`` command's huge pages: asked for before torch is imported, so PyTorch really uses them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gan.bench import device_description
from gan.utils.memory import HUGE_PAGES_ENV, THP_MODE, page_setting

# Runs a `gan` command that imports torch and stops at its argument check, then writes a 64 MB CPU tensor and
# prints how many KB of this process's anonymous memory the kernel maps with huge pages, before and after.
PROBE = """
import sys
from gan.cli import main

def huge_kb():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1])

try:
    main(["sample", "--no-such-option"])
except SystemExit:
    pass
assert "torch" in sys.modules, "the probe's command should have imported torch"
import torch

before = huge_kb()
tensor = torch.ones(64 << 20, dtype=torch.uint8)
print(before, huge_kb())
"""


def huge_page_growth(env_value: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != HUGE_PAGES_ENV}
    if env_value is not None:
        env[HUGE_PAGES_ENV] = env_value
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    before, after = map(int, result.stdout.split()[-2:])
    return after - before


@pytest.mark.skipif(not THP_MODE.exists() or "[never]" in THP_MODE.read_text(),
                    reason="this kernel maps no transparent huge pages")
def test_the_gan_command_gets_huge_pages_for_large_tensors_unless_told_not_to():
    assert huge_page_growth(None) >= 32 << 10  # most of the 64 MB tensor in 2 MB pages
    if "[madvise]" in THP_MODE.read_text():  # only PyTorch's request gives them: the user's 0 is honoured
        assert huge_page_growth("0") == 0


@pytest.mark.skipif(not THP_MODE.exists() or "[madvise]" not in THP_MODE.read_text(),
                    reason="the page size depends on the environment only in the kernel's madvise mode")
def test_benchmark_captions_say_which_pages_the_environment_gives(monkeypatch):
    monkeypatch.setenv(HUGE_PAGES_ENV, "1")
    assert page_setting() == "2 MB pages"
    monkeypatch.setenv(HUGE_PAGES_ENV, "0")
    assert page_setting() == "4 KB pages"
    if not torch.cuda.is_available():
        assert "4 KB pages" in device_description()
