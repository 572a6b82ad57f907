"""Named evaluation protocols: how many generated images are scored against how many real ones.

FID depends on these counts more than on small model changes, so each result names its protocol and
``gan eval --protocol`` offers exactly the entries of :data:`PROTOCOLS`. A new protocol is one entry.

Every protocol also fixes intra-class FID's counts (a conditional model, ``gan eval --intra-fid``): each class gets
``num_fake // num_classes`` generated images (:func:`fake_per_class`) against that class's images among the
protocol's real ones (the seeded subset, so about ``num_real / num_classes`` for balanced classes).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan.errors import UserError

EVAL_SEED = 2020  # the noise seed of every evaluation unless told otherwise: the same z, comparable numbers


@dataclass(frozen=True)
class Protocol:
    """``num_fake`` generated images against ``num_real`` real ones (a seeded subset; None: the whole split)."""

    name: str
    num_fake: int
    num_real: int | None
    used_by: str

    def describe(self) -> str:
        real = "the whole split" if self.num_real is None else f"{self.num_real:,} real"
        return (f"{self.name} = {self.num_fake:,} generated vs {real} ({self.used_by}); intra-class FID: "
                f"{self.num_fake:,} / classes generated per class vs that class's images among them")


def fake_per_class(num_fake: int, num_classes: int) -> int:
    """Intra-class FID's generated images per class: the protocol's count shared equally (remainder unused)."""
    return num_fake // num_classes



PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol("default", 50_000, None, "torch-fidelity, mimicry, pytorch-gan-collections"),
        Protocol("paper", 5_000, 10_000, "the SNGAN paper"),
    )
}

CUSTOM = "custom"  # the name a result records when its counts are not exactly a named protocol's


def resolve_protocol(name: str | None, num_fake: int | None, num_real: int | None, fallback: tuple[int, int | None],
                     where: str) -> tuple[str, int, int | None]:
    """(recorded name, num_fake, num_real): a named protocol's counts unless ``num_fake`` / ``num_real`` override
    them (the result then says ``custom``); without a name, the counts given or ``fallback``'s."""
    if name is not None and name not in PROTOCOLS:
        raise UserError(f"{where}={name!r} is not a named protocol; choose from {', '.join(PROTOCOLS)}")
    base = (PROTOCOLS[name].num_fake, PROTOCOLS[name].num_real) if name is not None else fallback
    named = name is not None and num_fake is None and num_real is None
    return (name if named else CUSTOM, base[0] if num_fake is None else num_fake,
            base[1] if num_real is None else num_real)

