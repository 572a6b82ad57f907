"""The named evaluation protocols' counts, pinned on the numbers their sources state (a swap changes every FID)."""

from gan.metrics.protocols import PROTOCOLS


def test_paper_protocol_is_5000_generated_against_10000_real():
    paper = PROTOCOLS["paper"]  # Miyato et al. 2018: 5,000 generated vs 10,000 real images
    assert (paper.num_fake, paper.num_real) == (5_000, 10_000)


def test_default_protocol_is_50000_generated_against_the_whole_split():
    default = PROTOCOLS["default"]
    assert (default.num_fake, default.num_real) == (50_000, None)
