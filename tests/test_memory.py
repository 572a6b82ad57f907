"""The ``gan`` command's huge pages: asked for before torch is imported, so PyTorch really uses them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gan.bench import device_description
from gan.utils import memory
from gan.utils.memory import HUGE_PAGES_ENV, THP_MODE

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


def run_probe(code: str, env_value: str | None) -> list[str]:
    """The last line of ``code``'s output, split, run in a fresh Python with the variable unset or set to
    ``env_value``."""
    env = {k: v for k, v in os.environ.items() if k != HUGE_PAGES_ENV}
    if env_value is not None:
        env[HUGE_PAGES_ENV] = env_value
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1].split()


def huge_page_growth(env_value: str | None) -> int:
    before, after = map(int, run_probe(PROBE, env_value))
    return after - before


@pytest.mark.skipif(not THP_MODE.exists() or "[never]" in THP_MODE.read_text(),
                    reason="this kernel maps no transparent huge pages")
def test_the_gan_command_gets_huge_pages_for_large_tensors_unless_told_not_to():
    assert huge_page_growth(None) >= 32 << 10  # most of the 64 MB tensor in 2 MB pages
    if "[madvise]" in THP_MODE.read_text():  # only PyTorch's request gives them: the user's 0 is honoured
        assert huge_page_growth("0") == 0


@pytest.mark.parametrize("mode", ["[always] madvise never", "always [madvise] never", "always madvise [never]"])
@pytest.mark.parametrize("env_value", [None, "0", "1", "true"])
def test_benchmark_captions_say_which_pages_the_kernel_and_environment_give(tmp_path, monkeypatch, mode, env_value):
    mode_file = tmp_path / "enabled"
    mode_file.write_text(mode + "\n")
    monkeypatch.setattr(memory, "THP_MODE", mode_file)
    if env_value is None:
        monkeypatch.delenv(HUGE_PAGES_ENV, raising=False)
    else:
        monkeypatch.setenv(HUGE_PAGES_ENV, env_value)
    huge = "[always]" in mode or ("[madvise]" in mode and env_value == "1")  # PyTorch takes "1" only
    assert memory.page_setting() == ("2 MB pages" if huge else "4 KB pages")
    if not torch.cuda.is_available():
        assert memory.page_setting() in device_description()


# In a fresh process: the `gan` command sets the variable before anything imports torch, and keeps a preset value.
ORDER_PROBE = """
import sys
import gan.cli

seen = []
def spy():
    seen.append("torch" in sys.modules)
    real()
real, gan.cli.request_huge_pages = gan.cli.request_huge_pages, spy
try:
    gan.cli.main(["sample", "--no-such-option"])
except SystemExit:
    pass
import os
print(seen, os.environ.get("THP_MEM_ALLOC_ENABLE"))
"""


@pytest.mark.parametrize(("preset", "expected"), [(None, "1"), ("0", "0")])
def test_the_gan_command_sets_the_variable_before_torch_loads(preset, expected):
    assert run_probe(ORDER_PROBE, preset) == ["[False]", expected]
