"""Optimisers against their continuous-time limits: measured orders for gradient descent and heavy
ball, and the SGD modified equation's fluctuations against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mathml.sde.optimizer_limits import (
    gradient_descent,
    gradient_flow,
    heavy_ball,
    heavy_ball_flow,
    sgd,
    sgd_modified_equation,
    side_by_side,
)


def _grad(x):
    """∇f for f(x) = Σ log cosh(x_i − 1) + ¼ (x₁ x₂)²: smooth, non-quadratic."""
    g = torch.tanh(x - 1.0)
    cross = 0.5 * x[:, 0] * x[:, 1]
    return g + torch.stack([cross * x[:, 1], cross * x[:, 0]], dim=1)


X0 = torch.tensor([[2.0, -1.5], [-1.0, 0.5]], dtype=torch.float64)


def _slope(hs, errs):
    return np.polyfit(np.log(hs), np.log(errs), 1)[0]


def test_gradient_descent_tracks_gradient_flow_at_first_order():
    """‖x_{T/h} − x(T)‖ at T = 2 for h = 0.1 … 0.0125: log–log slope 1 ± 0.15 (Euler's global order)."""
    hs = [0.1, 0.05, 0.025, 0.0125]
    errs = []
    for h in hs:
        n = round(2.0 / h)
        gd = gradient_descent(_grad, X0, lr=h, n_steps=n)[-1]
        gf = gradient_flow(_grad, X0, [0.0, 2.0])[-1]
        errs.append((gd - gf).norm(dim=1).max().item())
    assert abs(_slope(hs, errs) - 1.0) < 0.15, errs


def test_heavy_ball_tracks_the_damped_oscillator_at_first_order_in_sqrt_lr():
    """Heavy ball with η = h², β = 1 − γh (γ = 2) vs ẍ + γẋ + ∇f = 0 at t = 3: slope 1 ± 0.2 in h."""
    hs = [0.1, 0.05, 0.025, 0.0125]
    errs = []
    for h in hs:
        res = side_by_side(_grad, X0, lr=h * h, n_steps=round(3.0 / h), momentum=1.0 - 2.0 * h)
        errs.append(res["error"][-1].item())
    assert abs(_slope(hs, errs) - 1.0) < 0.2, errs
    # and the iterates themselves are the functions' outputs
    res = side_by_side(_grad, X0, lr=0.01, n_steps=30, momentum=0.8)
    torch.testing.assert_close(res["discrete"], heavy_ball(_grad, X0, lr=0.01, momentum=0.8, n_steps=30))
    torch.testing.assert_close(res["continuous"][-1], heavy_ball_flow(_grad, X0, res["t"], friction=2.0)[-1])


# 1-D quadratic with minibatch noise: f_i(x) = ½ (x − c_i)², c_i with mean c̄ and variance s²; a
# minibatch of size b gives ∇ = x − c̄ − ξ, Var ξ = s²/b. SGD's moments follow exactly
#   m_{k+1} = (1 − η) m_k + η c̄,   v_{k+1} = (1 − η)² v_k + η² s²/b,
# and the modified equation is the OU process dX = −(X − c̄) dt + √(η s²/b) dW with
#   E X_t = c̄ + e^{−t}(x₀ − c̄),   Var X_t = (η s²/b)(1 − e^{−2t})/2.
C_BAR, S2, BATCH, X_START, T_END = 1.0, 4.0, 4, 3.0, 2.0


def _sgd_moments(eta):
    n = round(T_END / eta)
    m, v = X_START, 0.0
    for _ in range(n):
        m, v = (1 - eta) * m + eta * C_BAR, (1 - eta) ** 2 * v + eta**2 * S2 / BATCH
    return m, v


def _sme_moments(eta):
    return C_BAR + math.exp(-T_END) * (X_START - C_BAR), eta * S2 / BATCH * (1 - math.exp(-2 * T_END)) / 2


def test_sgd_modified_equation_captures_the_fluctuations_to_first_order():
    """Li, Tai & E 2017, Thm 1: the SME's variance of X_T differs from SGD's by O(η²), i.e. its relative
    error falls like η (slope 1 ± 0.1), while the gradient flow has no variance at all (relative
    error 1 at every η)."""
    etas = [0.1, 0.05, 0.025, 0.0125]
    rel = []
    for eta in etas:
        _, v_sgd = _sgd_moments(eta)
        _, v_sme = _sme_moments(eta)
        rel.append(abs(v_sme - v_sgd) / v_sgd)
    assert abs(_slope(etas, rel) - 1.0) < 0.1, rel
    assert rel[-1] < 0.02


def test_sgd_and_sme_simulations_match_their_closed_forms():
    """20,000 independent runs of ``sgd`` (η = 0.05) and of ``sgd_modified_equation`` (dt = 1e-3):
    sample mean and variance within 4 SE of the exact recursions / OU moments (SE of a mean √(v/n),
    of a variance v√(2/n))."""
    n, eta = 20_000, 0.05
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((n, 1), X_START, dtype=torch.float64)

    def stochastic_grad(x, gen):
        return x - C_BAR - math.sqrt(S2 / BATCH) * torch.randn(x.shape, generator=gen, dtype=x.dtype)

    runs = sgd(stochastic_grad, x0, lr=eta, n_steps=round(T_END / eta), generator=g)[-1, :, 0]
    m, v = _sgd_moments(eta)
    assert abs(runs.mean().item() - m) < 4 * math.sqrt(v / n)
    assert abs(runs.var().item() - v) < 4 * v * math.sqrt(2 / n)
    paths = sgd_modified_equation(lambda x: x - C_BAR,
                                  lambda x: torch.full((x.shape[0], 1, 1), math.sqrt(S2 / BATCH), dtype=x.dtype),
                                  x0, lr=eta, t_end=T_END, dt=1e-3, generator=g)[:, 0]
    m, v = _sme_moments(eta)
    # Euler–Maruyama at dt = 1e-3 adds an O(dt) bias ≈ 1e-3 relative, far below 4 SE (≈ 4 %).
    assert abs(paths.mean().item() - m) < 4 * math.sqrt(v / n)
    assert abs(paths.var().item() - v) < 4 * v * math.sqrt(2 / n)


@pytest.mark.parametrize("call, match", [
    (lambda: gradient_descent(_grad, X0, lr=0.0, n_steps=3), "lr"),
    (lambda: heavy_ball(_grad, X0, lr=0.1, momentum=1.0, n_steps=3), "momentum"),
    (lambda: gradient_flow(_grad, X0[0], [0.0, 1.0]), r"\(B, d\)"),
    (lambda: heavy_ball_flow(_grad, X0, [0.0, 1.0], friction=-1.0), "friction"),
])
def test_bad_arguments_are_refused(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
