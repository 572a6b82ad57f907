"""One module per ``gan`` subcommand; each exposes ``main(argv: list[str]) -> int``."""
