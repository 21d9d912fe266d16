"""Classifier-free guidance: scale 0 and 1 are exactly the unconditional and conditional scores;
with exact mixture scores the guided score is the score of the tilted density p_t(x) p_t(y|x)^γ
(computed independently by autograd through Bayes' rule); guided sampling works through the
samplers unchanged; label dropout drops at the stated rate; argument errors."""

import math

import pytest
import torch

from mathml.distributions import GaussianMixture
from mathml.layers import UNet
from mathml.objectives import EpsilonPrediction
from mathml.sde import VPSDE, ClassifierFreeGuidance, ddim, dpm_solver_2m, drop_labels, euler_maruyama, pf_ode_heun

SDE = VPSDE()
K = 3
MEANS = torch.tensor([[4.0, 0.0], [-2.0, 3.5], [-2.0, -3.5]], dtype=torch.float64)
VARS = torch.tensor([0.3, 0.5, 0.4], dtype=torch.float64)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
MIXTURE = GaussianMixture(WEIGHTS, MEANS, VARS)
COMPONENTS = [GaussianMixture(torch.ones(1, dtype=torch.float64), MEANS[k : k + 1], VARS[k : k + 1]) for k in range(K)]


def exact_conditional_score(x, t, y):
    """s(x, t, y): the diffused component y's score for y < K; the whole mixture's for y = K (∅)."""
    out = MIXTURE.score_at(x, t, SDE)
    for k in range(K):
        mask = y == k
        if mask.any():
            out[mask] = COMPONENTS[k].score_at(x[mask], t[mask], SDE)
    return out


def _points(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 3.0 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.05
    y = torch.randint(0, K, (n,), generator=g)
    return x, t, y


def test_scale_zero_and_one_are_the_unconditional_and_conditional_scores_exactly():
    x, t, y = _points()
    null = torch.full_like(y, K)
    assert torch.equal(ClassifierFreeGuidance(exact_conditional_score, y, 0.0, K)(x, t),
                       exact_conditional_score(x, t, null))
    assert torch.equal(ClassifierFreeGuidance(exact_conditional_score, y, 1.0, K)(x, t),
                       exact_conditional_score(x, t, y))
    # the same for a conditional U-Net behind the ε-prediction adapter
    torch.manual_seed(0)
    net = UNet([1, 8, 8], base_channels=8, channel_multipliers=[1, 2], norm_groups=4, num_classes=10,
               zero_init_output=False)
    score = EpsilonPrediction(net, SDE).eval()
    xi, ti, yi = torch.randn(4, 1, 8, 8), torch.rand(4) * 0.9 + 0.05, torch.tensor([0, 3, 9, 10])
    assert torch.equal(ClassifierFreeGuidance(score, yi, 0.0, 10)(xi, ti), score(xi, ti))  # y=None: ∅
    assert torch.equal(ClassifierFreeGuidance(score, yi, 1.0, 10)(xi, ti), score(xi, ti, yi))
    # other scales: one batched call of 2B equals two calls of B (to rounding)
    for gamma in (0.5, 3.0):
        torch.testing.assert_close(ClassifierFreeGuidance(score, yi, gamma, 10)(xi, ti),
                                   ClassifierFreeGuidance(score, yi, gamma, 10, batched=False)(xi, ti))


@pytest.mark.parametrize("gamma", [0.5, 2.0, 4.0])
def test_guided_exact_scores_give_the_score_of_the_tilted_density(gamma):
    # log p̃_t(x | y) = log p_t(x) + γ log p_t(y | x) + const, with Bayes' rule
    # p_t(y | x) = w_y N_y,t(x) / p_t(x) evaluated through torch.distributions; its x-gradient by autograd.
    x, t, y = _points(seed=1)
    x = x.requires_grad_(True)
    alpha, sigma = SDE.alpha_sigma(t)
    comp = torch.distributions.MultivariateNormal(
        alpha[:, None, None] * MEANS[None],
        (alpha[:, None] ** 2 * VARS[None] + sigma[:, None] ** 2)[..., None, None] * torch.eye(2, dtype=torch.float64))
    log_joint = torch.log(WEIGHTS)[None] + comp.log_prob(x[:, None, :])  # (B, K): log w_k N_k,t(x)
    log_p = torch.logsumexp(log_joint, dim=1)
    log_posterior = log_joint.gather(1, y[:, None])[:, 0] - log_p
    (expected,) = torch.autograd.grad((log_p + gamma * log_posterior).sum(), x)
    got = ClassifierFreeGuidance(exact_conditional_score, y, gamma, K)(x.detach(), t)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sampler", [ddim, dpm_solver_2m, pf_ode_heun, euler_maruyama])
def test_every_sampler_guides_through_the_adapter_unchanged(sampler):
    # With the exact conditional score (γ = 1) nearly every draw lands in its class's component
    # (components are > 10 standard deviations apart); unguided (γ = 0) draws spread over all three.
    n = 300
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % K
    steps = 200 if sampler is euler_maruyama else 20
    out = {}
    for gamma in (0.0, 1.0):
        x_T = SDE.prior_sample((n, 2), generator=g, dtype=torch.float64)
        score = ClassifierFreeGuidance(exact_conditional_score, y, gamma, K)
        x0 = sampler(SDE, score, x_T, steps=steps, generator=g)
        out[gamma] = torch.cdist(x0, MEANS).argmin(1)
    assert (out[1.0] == y).float().mean() >= 0.98
    counts = torch.bincount(out[0.0], minlength=K).double() / n
    # unguided: the mixture weights within 5 binomial standard errors (sqrt(w(1−w)/n) <= 0.029)
    assert ((counts - WEIGHTS).abs() <= 5 * (WEIGHTS * (1 - WEIGHTS) / n).sqrt()).all(), counts


def test_label_dropout_drops_at_the_stated_rate_and_keeps_the_other_labels():
    n, p = 20_000, 0.2
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(0))
    out = drop_labels(y, p, 10, generator=torch.Generator().manual_seed(1))
    dropped = out == 10
    # the dropped fraction is within 4 standard errors sqrt(p(1−p)/n) ≈ 0.0028 of p
    assert abs(dropped.float().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(out[~dropped], y[~dropped])
    assert torch.equal(drop_labels(y, 0.0, 10), y) and (drop_labels(y, 1.0, 10) == 10).all()


def test_argument_errors():
    y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="guidance_scale must be a number >= 0"):
        ClassifierFreeGuidance(exact_conditional_score, y, -1.0, K)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\]"):
        ClassifierFreeGuidance(exact_conditional_score, torch.tensor([0, 4]), 1.0, K)
    with pytest.raises(ValueError, match="y must be an integer tensor"):
        ClassifierFreeGuidance(exact_conditional_score, torch.tensor([0.0, 1.0]), 1.0, K)
    with pytest.raises(ValueError, match="batch size B = 2"):
        ClassifierFreeGuidance(exact_conditional_score, y, 2.0, K)(torch.zeros(3, 2), torch.rand(3))
    with pytest.raises(ValueError, match=r"p_uncond must be a probability in \[0, 1\]"):
        drop_labels(y, 1.5, K)
