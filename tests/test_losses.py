import pytest
import torch

from gan.errors import UserError
from gan.losses import LOSSES, get_loss


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


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_are_finite_with_gradients(name):
    d, g = get_loss(name)
    real, fake = torch.randn(4, requires_grad=True), torch.randn(4, requires_grad=True)
    (d(real, fake) + g(fake)).backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


def test_unknown_loss_names_the_choices():
    with pytest.raises(UserError, match="loss='l2'.*hinge"):
        get_loss("l2")
