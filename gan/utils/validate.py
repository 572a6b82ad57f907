"""Range checks for numeric settings, made before any work: each failure is one UserError naming the field, its value
and the range that would fix it (a negative batch size must not first allocate 23 GB, an lr of -1 must not reach
Adam)."""

from __future__ import annotations

import math

from gan.errors import UserError


def at_least(field: str, value: int | None, minimum: int) -> None:
    """``value`` (None: unset, the default applies) must be an integer >= ``minimum``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise UserError(f"{field}={value!r} is out of range; use an integer >= {minimum}")


MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit seed
MAX_DATA_SEED = 2**62  # the data sampler seeds pass e with data.seed + e
MAX_GLOBAL_SEED = 2**32 - 1  # Lightning's seed_everything bound (numpy's uint32); a study seeds it with each seed


def is_seed(value: object, maximum: int = MAX_SEED) -> bool:
    """Whether ``value`` is an integer in [0, ``maximum``] (compared as integers: ``in_range`` compares floats, which
    cannot tell 2**63 from 2**63 - 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def seed_in_range(field: str, value: int, maximum: int = MAX_SEED) -> None:
    """A seed must pass :func:`is_seed`: not an overflow traceback from the generator it seeds."""
    if not is_seed(value, maximum):
        raise UserError(f"{field}={value!r} is out of range; use an integer from 0 to {maximum}")


def in_range(field: str, value: float, low: float, high: float, *, low_open: bool = False,
             high_open: bool = False) -> None:
    """``value`` must be a number in the interval from ``low`` to ``high`` (NaN never is)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
    ok = ok and (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise UserError(f"{field}={value!r} is out of range; use a number in {interval}")


def positive(field: str, value: float) -> None:
    """``value`` must be a finite number > 0 (learning rates and the like)."""
    in_range(field, value, 0.0, math.inf, low_open=True, high_open=True)


CHANNELS = (1, 3)  # grey or RGB: what the models make, the datasets are converted to and FID's Inception reads
MAX_IMAGE_SIZE = 1024  # pixels a side; bounded before any allocation (100,000 would ask for terabytes)


def check_image_format(section: str, image_size: int, channels: int) -> None:
    """The images every part of gan handles: 1 to MAX_IMAGE_SIZE pixels a side, CHANNELS channels."""
    at_least(f"{section}.image_size", image_size, 1)
    if image_size > MAX_IMAGE_SIZE:
        raise UserError(f"{section}.image_size={image_size} is out of range; use at most {MAX_IMAGE_SIZE} pixels a "
                        "side")
    if channels not in CHANNELS:
        raise UserError(f"{section}.channels={channels} is not supported; use 1 (grey) or 3 (RGB)")
