"""The ``gan`` command: a thin dispatcher to one module per subcommand in ``gan.commands``."""

from __future__ import annotations

import importlib
import sys

from gan.errors import UserError
from gan.utils.memory import request_huge_pages

# subcommand -> (module in gan.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("fit", "train a GAN from a YAML config (LightningCLI: --config, --print_config, overrides)"),
    "sample": ("sample", "write a PNG grid or a folder of samples from a checkpoint"),
    "eval": ("evaluate", "FID / IS / KID of a checkpoint or an image folder, with an explicit protocol"),
    "compare": ("compare", "markdown table and FID-vs-step plot of several runs"),
    "study": ("study", "train and score a grid of variants x seeds, report mean +- std per variant"),
    "bench": ("bench", "speed benchmarks: convnorm, step, fid, gpu"),
}


def usage() -> str:
    lines = ["usage: gan COMMAND [options]   (gan COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"gan: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    request_huge_pages()  # before the command imports torch: PyTorch reads it once
    module = importlib.import_module(f"gan.commands.{COMMANDS[name][0]}")
    try:
        return int(module.main(rest) or 0)
    except Exception as err:
        user_error = bad_input(err)
        if user_error is None:
            raise
        print(f"gan {name}: error: {user_error}", file=sys.stderr)
        return 2


def bad_input(err: BaseException) -> UserError | None:
    """The UserError behind ``err``, if any: jsonargparse wraps errors raised while it builds config classes
    (e.g. a callback's range check) in its own exceptions."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
