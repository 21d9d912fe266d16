"""Energy networks and contrastive divergence: the score by autograd, the CD gradient against the
exact likelihood gradient of a Gaussian energy, and the replay buffer's state and re-initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mathml.layers import EnergyMLP
from mathml.objectives import ContrastiveDivergence, ReplayBuffer


def test_energy_score_is_minus_the_gradient():
    torch.manual_seed(0)
    e = EnergyMLP((1, 2, 2), hidden=(16,)).double()
    x = torch.randn(5, 1, 2, 2, dtype=torch.float64)
    s = e.score(x)
    h = 1e-6
    fd = torch.zeros_like(x)
    for i in range(4):
        d = torch.zeros(4, dtype=torch.float64)
        d[i] = h
        d = d.view(1, 1, 2, 2)
        fd.view(5, 4)[:, i] = -(e(x + d) - e(x - d)) / (2 * h)
    torch.testing.assert_close(s, fd, rtol=1e-6, atol=1e-8)
    assert e(x).shape == (5,)
    with pytest.raises(ValueError, match="expected x of shape"):
        e(torch.zeros(3, 4))


class _Quadratic(nn.Module):
    """E_λ(x) = ½ λ x²: p_λ = N(0, 1/λ)."""

    def __init__(self, lam: float) -> None:
        super().__init__()
        self.lam = nn.Parameter(torch.tensor(lam, dtype=torch.float64))

    def forward(self, x):
        return 0.5 * self.lam * x.pow(2).sum(1)

    def score(self, x):
        return -self.lam.detach() * x


def test_cd_gradient_matches_the_likelihood_gradient_of_its_sampler():
    """∂/∂λ of mean(E(x⁺) − E(x⁻)) = ½ (E[x⁺²] − E[x⁻²]). With 600 ULA steps of h = 0.05 from noise,
    negatives follow ULA's stationary law N(0, v), v = (1/λ)/(1 − hλ/2) (closed form), so the expected
    gradient is ½ (s_d² − v); the exact NLL gradient ½ (s_d² − 1/λ) differs by ULA's O(h) bias. 20,000
    samples each side: tolerance 4 SE of the difference of two means of x²/2 (Var(x²/2) = v²/2)."""
    lam, s_d2, h, n = 2.0, 1.0, 0.05, 20_000
    g = torch.Generator().manual_seed(1)
    energy = _Quadratic(lam)
    cd = ContrastiveDivergence(None, langevin_steps=600, step_size=h, alpha=0.0)
    x_pos = math.sqrt(s_d2) * torch.randn(n, 1, generator=g, dtype=torch.float64)
    terms = cd(energy, x_pos, generator=g)
    terms["loss"].mean().backward()
    v = (1 / lam) / (1 - h * lam / 2)
    expected = 0.5 * (s_d2 - v)
    se = math.sqrt(s_d2**2 / 2 / n + v**2 / 2 / n)
    assert abs(energy.lam.grad.item() - expected) < 4 * se
    # The sign is the likelihood's: data wider than the model pushes λ down.
    assert energy.lam.grad.item() > 0 and 0.5 * (s_d2 - 1 / lam) > 0


def test_energy_regulariser_is_added_per_sample():
    e = _Quadratic(1.0)
    cd = ContrastiveDivergence(None, langevin_steps=2, step_size=0.1, alpha=0.5)
    x = torch.ones(4, 1, dtype=torch.float64)
    t = cd(e, x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(t["loss"], t["cd"] + 0.5 * (t["energy_pos"] ** 2 + t["energy_neg"] ** 2))
    torch.testing.assert_close(t["energy_pos"], torch.full((4,), 0.5, dtype=torch.float64))
    assert t["negatives"].shape == (4, 1) and not t["negatives"].requires_grad


def test_replay_buffer_round_trips_through_state_dict_and_reinitialises_at_its_rate():
    """Reloaded buffers draw identically; the re-initialised fraction is 0.05 within 4 SE
    (√(0.05·0.95/n), n = 20,000)."""
    buf = ReplayBuffer(1000, (2,), low=-3.0, high=3.0)
    g = torch.Generator().manual_seed(2)
    start, idx = buf.draw(10, generator=g)
    buf.push(start + 100.0, idx)  # stored states are far outside the noise box
    copy = ReplayBuffer(1000, (2,), low=-3.0, high=3.0)
    copy.load_state_dict(buf.state_dict())
    a = buf.draw(50, generator=torch.Generator().manual_seed(3))
    b = copy.draw(50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    big = ReplayBuffer(10, (1,), low=5.0, high=6.0)
    big.draw(1, generator=g)
    big.samples.fill_(0.0)
    start, _ = big.draw(20_000, generator=g)
    frac = (start[:, 0] >= 5.0).double().mean().item()
    assert abs(frac - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 20_000)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="reinit_prob"):
        ReplayBuffer(10, (2,), reinit_prob=1.5)
    with pytest.raises(ValueError, match="high must exceed low"):
        ReplayBuffer(10, (2,), low=1.0, high=1.0)
    with pytest.raises(ValueError, match="langevin_steps"):
        ContrastiveDivergence(None, langevin_steps=0)
    with pytest.raises(ValueError, match="alpha"):
        ContrastiveDivergence(None, alpha=-1.0)
