"""Studies: a grid of variants x seeds of one base config, trained as separate processes, scored, reported."""
