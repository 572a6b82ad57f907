"""One exception for bad input: the CLI prints its message as a single line instead of a traceback."""


class UserError(ValueError):
    """Bad input (config, data folder, checkpoint, CLI or constructor argument); the message names it and the fix.

    A ``ValueError``, so that a library caller catches every refused argument with ``except ValueError``, whether
    it came from a layer (``ConvNorm2d`` raises plain ``ValueError``) or from the rest of the package.
    """
