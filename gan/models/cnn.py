"""SNGAN "standard CNN" generator / discriminator (Miyato et al. 2018, Table 3), for any image size divisible by 8.

``width`` is the narrowest layer (64 in the paper); the others are 2x, 4x, 8x it. PyTorch's default init.
With ``num_classes`` G's BatchNorms are conditional and D adds a projection term (:mod:`gan.models.conditional`).
"""

from __future__ import annotations

from torch import Tensor, nn

from gan.models.conditional import Projection, batch_norm, check_labels, run_layers


class CNNGenerator(nn.Module):
    """Linear(z -> s*s*8w) -> BN-ReLU -> 3 x [ConvTranspose(k4, s2) -> BN-ReLU] -> conv3x3 -> tanh, s = size/8."""

    def __init__(self, image_size: int = 32, channels: int = 3, z_dim: int = 128, width: int | None = None,
                 num_classes: int | None = None) -> None:
        super().__init__()
        w = width or 64
        self.num_classes = num_classes
        self.bottom, self.c0 = image_size // 8, 8 * w
        self.linear = nn.Linear(z_dim, self.bottom**2 * 8 * w)
        layers: list[nn.Module] = [batch_norm(8 * w, num_classes), nn.ReLU()]
        for c_in, c_out in ((8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), batch_norm(c_out, num_classes), nn.ReLU()]
        layers += [nn.Conv2d(w, channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "generator")
        return run_layers(self.net, self.linear(z).view(-1, self.c0, self.bottom, self.bottom), y)


class CNNDiscriminator(nn.Module):
    """conv3x3 w, conv4x4/2 w, conv3x3 2w, conv4x4/2 2w, conv3x3 4w, conv4x4/2 4w, conv3x3 8w (LeakyReLU 0.1) ->
    Linear(s*s*8w -> 1) (+ projection of the flattened map); unnormalized (see apply_norm)."""

    def __init__(self, image_size: int = 32, channels: int = 3, width: int | None = None,
                 num_classes: int | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        w = width or 64
        spec = [(channels, w, 3, 1), (w, w, 4, 2), (w, 2 * w, 3, 1), (2 * w, 2 * w, 4, 2),
                (2 * w, 4 * w, 3, 1), (4 * w, 4 * w, 4, 2), (4 * w, 8 * w, 3, 1)]
        layers: list[nn.Module] = []
        for c_in, c_out, k, s in spec:
            layers += [nn.Conv2d(c_in, c_out, k, s, 1), nn.LeakyReLU(0.1)]
        self.net = nn.Sequential(*layers)
        self.linear = nn.Linear((image_size // 8) ** 2 * 8 * w, 1)
        self.projection = None if num_classes is None else Projection(num_classes, self.linear.in_features)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "discriminator")
        features = self.net(x).flatten(1)
        logit = self.linear(features).squeeze(1)
        return logit if self.projection is None else logit + self.projection(features, y)
