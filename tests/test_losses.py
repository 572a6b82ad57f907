import pytest
import torch

from gan.errors import UserError
from gan.training.losses import LOSSES, get_loss


def test_hinge_values():
    d, g = get_loss("hinge")
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])
    assert d(real, fake).item() == pytest.approx(0.5 + 0.75)
    assert g(fake).item() == pytest.approx(0.75)


def test_non_saturating_matches_binary_cross_entropy():
    d, g = get_loss("non-saturating")
    real, fake = torch.randn(8), torch.randn(8)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(real, torch.ones(8)) + bce(fake, torch.zeros(8))
    torch.testing.assert_close(d(real, fake), expected)
    torch.testing.assert_close(g(fake), bce(fake, torch.ones(8)))


def test_wasserstein_values():
    d, g = get_loss("wasserstein")
    assert d(torch.tensor([3.0]), torch.tensor([1.0])).item() == -2.0
    assert g(torch.tensor([1.0, 3.0])).item() == -2.0


# d loss / d real_i, d loss / d fake_i and d g loss / d fake_i, derived by hand, for n logits per side
GRADIENTS = {
    "hinge": (lambda r, n: -(r < 1).double() / n, lambda f, n: (f > -1).double() / n,
              lambda f, n: -torch.ones_like(f) / n),
    "non-saturating": (lambda r, n: -torch.sigmoid(-r) / n, lambda f, n: torch.sigmoid(f) / n,
                       lambda f, n: -torch.sigmoid(-f) / n),
    "wasserstein": (lambda r, n: -torch.ones_like(r) / n, lambda f, n: torch.ones_like(f) / n,
                    lambda f, n: -torch.ones_like(f) / n),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradients_match_their_closed_forms_and_stay_finite_at_extreme_logits(name):
    assert set(GRADIENTS) == set(LOSSES)
    d_loss, g_loss = get_loss(name)
    d_real, d_fake, g_fake = GRADIENTS[name]
    torch.manual_seed(0)
    for scale in (2.0, 200.0):  # 200: far into softplus' saturation, where a naive log(sigmoid) overflows
        real = (torch.randn(6, dtype=torch.float64) * scale).requires_grad_()
        fake = (torch.randn(6, dtype=torch.float64) * scale).requires_grad_()
        grad_real, grad_fake = torch.autograd.grad(d_loss(real, fake), (real, fake))
        (grad_g,) = torch.autograd.grad(g_loss(fake), fake)
        for got, expected in ((grad_real, d_real(real, 6)), (grad_fake, d_fake(fake, 6)), (grad_g, g_fake(fake, 6))):
            assert torch.isfinite(got).all()
            torch.testing.assert_close(got, expected.detach(), rtol=1e-12, atol=1e-15)


def test_unknown_loss_names_the_choices():
    with pytest.raises(UserError, match="loss='l2'.*hinge"):
        get_loss("l2")
