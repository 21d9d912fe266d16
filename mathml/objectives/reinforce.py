"""The score-function (REINFORCE) gradient estimator with a leave-one-out baseline.

For an expectation over a distribution without a reparameterisation (Bernoulli, categorical
latents), the gradient with respect to the distribution's parameters φ is

    ∇_φ E_{q_φ(z)}[f(z)] = E_{q_φ(z)}[f(z) ∇_φ log q_φ(z)]       (Williams 1992, §4, Theorem 1),

and any baseline b independent of z leaves it unbiased: E[(f(z) − b) ∇_φ log q_φ(z)] is the same,
because E_q[∇_φ log q_φ(z)] = 0. With S ≥ 2 draws z_1..z_S ~ q, the leave-one-out baseline

    b_s = (1/(S−1)) Σ_{j≠s} f(z_j)

uses only the other draws, so it is independent of z_s and the estimator

    ĝ = (1/S) Σ_s [∇_φ f(z_s) + (f(z_s) − b_s) ∇_φ log q_φ(z_s)]

stays unbiased (Kool, van Hoof & Welling 2019, "Buy 4 REINFORCE samples, get a baseline for
free!"; the multi-sample form of the baselines of Mnih & Gregor 2014, NVIL, §3.1, with the
baseline estimated from the other samples instead of a learned network). Since
(f_s − b_s) = S/(S−1) · (f_s − f̄), this is (1/(S−1)) Σ_s (f_s − f̄) ∇ log q(z_s) plus the
pathwise term.

The estimator is implemented as a *surrogate*: a tensor whose value is the plain Monte-Carlo mean
(1/S) Σ_s f(z_s) and whose autograd gradient is ĝ, via log q − stop(log q), which is 0 in value and
∇ log q in gradient.
"""

from __future__ import annotations

import torch

from mathml.checks import check_choice, check_tensor

__all__ = ["score_function_surrogate"]

_BASELINES = ("leave_one_out", "none")


def score_function_surrogate(
    f: torch.Tensor, log_q: torch.Tensor, *, baseline: str = "leave_one_out"
) -> torch.Tensor:
    """Monte-Carlo mean of f over draws of q, with the score-function gradient for q's parameters.

    Args:
        f: ``(S, *batch)`` values f(z_s) at draws z_s ~ q_φ taken without gradient (e.g. by
            ``mathml.distributions.sample``). f may carry gradients of its own (a decoder's
            parameters in log p(x|z_s)); they pass through unchanged (the ∇_φ f term).
        log_q: ``(S, *batch)`` log q_φ(z_s), with gradient to φ.
        baseline: ``"leave_one_out"`` (needs S ≥ 2; Kool et al. 2019) or ``"none"`` (plain
            REINFORCE, Williams 1992).

    Returns:
        ``(*batch)`` tensor whose value is (1/S) Σ_s f(z_s) and whose gradient is the unbiased
        estimator ĝ of ∇ E_q[f] in the module docstring.

    Raises:
        ValueError: shapes of ``f`` and ``log_q`` differ, there is no sample axis, or S < 2 with the
            leave-one-out baseline.
    """
    check_tensor(f, "f", min_dim=1, shape_doc="(S, *batch)")
    check_tensor(log_q, "log_q", min_dim=1, shape_doc="(S, *batch)")
    check_choice(baseline, "baseline", _BASELINES)
    if f.shape != log_q.shape:
        raise ValueError(f"f and log_q must have the same shape (S, *batch), got {tuple(f.shape)} and "
                         f"{tuple(log_q.shape)}")
    S = f.shape[0]
    if baseline == "leave_one_out" and S < 2:
        raise ValueError(f"the leave-one-out baseline needs S >= 2 draws along dim 0, got S = {S}")
    f_bar = f.detach()
    if baseline == "leave_one_out":
        b = (f_bar.sum(0, keepdim=True) - f_bar) / (S - 1)  # b_s = mean of the other draws
    else:
        b = torch.zeros_like(f_bar)
    score = log_q - log_q.detach()  # value 0, gradient ∇_φ log q_φ(z_s)
    return (f + (f_bar - b) * score).mean(0)
