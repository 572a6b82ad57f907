"""Small helpers with no knowledge of GANs: atomic writes and file locks, devices, markdown tables, PNG figures,
eval mode for side work, range checks of numeric settings."""
