"""``gan --help`` stays light (it imports no torch: 3 s saved on every typo), and every command and benchmark
explains itself."""

import subprocess
import sys

import pytest

from gan.cli import COMMANDS, main
from gan.commands.bench import BENCHMARKS


def test_gan_help_lists_the_commands_without_importing_torch():
    code = "import sys; from gan.cli import main; main(['--help']); print('torch imported:', 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "torch imported: False"
    assert all(f"  {name} " in out for name in COMMANDS)


@pytest.mark.parametrize("argv", [[name, "--help"] for name in COMMANDS] + [["bench", name, "--help"]
                                                                             for name in BENCHMARKS])
def test_every_command_explains_itself(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse and LightningCLI exit after printing help
        code = stop.code
    assert code in (0, None)
    assert "usage: gan " in capsys.readouterr().out
