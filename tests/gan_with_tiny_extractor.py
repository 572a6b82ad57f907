"""``gan`` with the tests' tiny feature extractor registered: what ``gan study`` jobs run as in the tests."""

import sys

import conftest  # noqa: F401 - registers the tiny extractor with torch-fidelity

from gan.cli import main

if __name__ == "__main__":
    sys.exit(main())
