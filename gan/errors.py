"""One exception for bad user input: the CLI prints its message as a single line instead of a traceback."""


class UserError(Exception):
    """Bad input (config, data folder, checkpoint, CLI argument); the message names it and how to fix it."""
