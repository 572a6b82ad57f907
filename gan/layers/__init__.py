"""Layers: ConvNorm2d, the discriminator-normalization switch, exact spectral norms."""
