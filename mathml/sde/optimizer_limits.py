"""Optimisers and their continuous-time limits, run side by side on the same objective.

- Gradient descent x_{k+1} = x_k − h ∇f(x_k) is the explicit Euler scheme of the gradient flow
  ẋ = −∇f(x) (e.g. Su, Boyd & Candès 2016, JMLR 17, §1); at t = k h they differ by O(h).
- Heavy-ball momentum x_{k+1} = x_k − η ∇f(x_k) + β (x_k − x_{k−1}) (Polyak 1964, eq. 9) with
  h = √η and β = 1 − γ h is a consistent discretisation of the damped second-order ODE
  ẍ + γ ẋ + ∇f(x) = 0 (Polyak 1964, §3; Su, Boyd & Candès 2016, §2 for the analogous Nesterov
  limit); at t = k h they differ by O(h).
- SGD x_{k+1} = x_k − η ∇f_γ(x_k) with minibatch gradients of covariance Σ(x) is approximated to weak
  order 1 by the stochastic modified equation dX = −∇f(X) dt + √η Σ(X)^{1/2} dW, t = k η (Li, Tai &
  E 2017, "Stochastic modified equations and adaptive stochastic gradient algorithms", ICML,
  Thm 1 and eq. (7)). Unlike the gradient flow, it carries SGD's O(η) fluctuations.

All functions take ``grad_f: (B, d) -> (B, d)`` over a batch of starting points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torchdiffeq

from mathml.checks import check_generator, check_in_open_interval, check_positive, check_positive_int, check_tensor

Grad = Callable[[torch.Tensor], torch.Tensor]


def _check_x0(x0: torch.Tensor) -> None:
    check_tensor(x0, "x0", min_dim=2, shape_doc="(B, d)")
    if x0.dim() != 2:
        raise ValueError(f"x0 must have shape (B, d), got {tuple(x0.shape)}")


def gradient_descent(grad_f: Grad, x0: torch.Tensor, *, lr: float, n_steps: int) -> torch.Tensor:
    """x_{k+1} = x_k − h ∇f(x_k); returns the iterates ``(n_steps + 1, B, d)`` (x₀ first)."""
    _check_x0(x0)
    check_positive(lr, "lr")
    check_positive_int(n_steps, "n_steps")
    xs = [x0]
    for _ in range(n_steps):
        xs.append(xs[-1] - lr * grad_f(xs[-1]))
    return torch.stack(xs)


def gradient_flow(grad_f: Grad, x0: torch.Tensor, times: Sequence[float] | torch.Tensor, *,
                  rtol: float = 1e-9, atol: float = 1e-9) -> torch.Tensor:
    """The solution of ẋ = −∇f(x), x(0) = x₀, at increasing ``times`` (starting with 0), by
    torchdiffeq's dopri5: ``(len(times), B, d)``."""
    _check_x0(x0)
    ts = torch.as_tensor(times, dtype=x0.dtype, device=x0.device)
    return torchdiffeq.odeint(lambda t, x: -grad_f(x), x0, ts, rtol=rtol, atol=atol, method="dopri5")


def heavy_ball(grad_f: Grad, x0: torch.Tensor, *, lr: float, momentum: float, n_steps: int) -> torch.Tensor:
    """x_{k+1} = x_k − η ∇f(x_k) + β (x_k − x_{k−1}) with x_{−1} = x₀ (Polyak 1964, eq. 9);
    returns ``(n_steps + 1, B, d)``."""
    _check_x0(x0)
    check_positive(lr, "lr")
    check_in_open_interval(momentum, "momentum", 0.0, 1.0)
    check_positive_int(n_steps, "n_steps")
    xs, prev = [x0], x0
    for _ in range(n_steps):
        x = xs[-1]
        nxt = x - lr * grad_f(x) + momentum * (x - prev)
        prev = x
        xs.append(nxt)
    return torch.stack(xs)


def heavy_ball_flow(grad_f: Grad, x0: torch.Tensor, times: Sequence[float] | torch.Tensor, *, friction: float,
                    v0: torch.Tensor | None = None, rtol: float = 1e-9, atol: float = 1e-9) -> torch.Tensor:
    """The damped oscillator ẍ + γ ẋ + ∇f(x) = 0, x(0) = x₀, ẋ(0) = v₀ (default 0), at ``times``:
    positions ``(len(times), B, d)``. Heavy ball with lr η and momentum 1 − γ√η follows it at
    t = k√η."""
    _check_x0(x0)
    check_positive(friction, "friction")
    v = torch.zeros_like(x0) if v0 is None else v0
    ts = torch.as_tensor(times, dtype=x0.dtype, device=x0.device)

    def field(t, state):
        x, vel = state
        return vel, -friction * vel - grad_f(x)

    return torchdiffeq.odeint(field, (x0, v), ts, rtol=rtol, atol=atol, method="dopri5")[0]


def sgd(stochastic_grad: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor], x0: torch.Tensor, *,
        lr: float, n_steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """x_{k+1} = x_k − η g(x_k, ξ_k) with a stochastic gradient ``stochastic_grad(x (B, d), generator)``
    drawing fresh minibatch noise for every row (independent runs); returns ``(n_steps + 1, B, d)``."""
    _check_x0(x0)
    check_positive(lr, "lr")
    check_positive_int(n_steps, "n_steps")
    check_generator(generator)
    xs = [x0]
    for _ in range(n_steps):
        xs.append(xs[-1] - lr * stochastic_grad(xs[-1], generator))
    return torch.stack(xs)


def sgd_modified_equation(grad_f: Grad, noise_sqrt_cov: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor,
                          *, lr: float, t_end: float, dt: float, generator: torch.Generator | None = None
                          ) -> torch.Tensor:
    """Euler–Maruyama paths of Li, Tai & E's SDE dX = −∇f(X) dt + √η Σ(X)^{1/2} dW on [0, t_end].

    Args:
        grad_f: ∇f, (B, d) → (B, d).
        noise_sqrt_cov: Σ(x)^{1/2}, (B, d) → (B, d, d) (the minibatch-gradient covariance's square root).
        x0: (B, d) starting points (independent paths).
        lr: η, the SGD learning rate (time t corresponds to SGD step t/η).
        t_end: end time. dt: EM step (≪ η for the SDE itself to be resolved).

    Returns:
        X(t_end), ``(B, d)``.
    """
    _check_x0(x0)
    check_positive(lr, "lr")
    check_positive(t_end, "t_end")
    check_positive(dt, "dt")
    check_generator(generator)
    n = max(1, round(t_end / dt))
    h = t_end / n
    x = x0
    for _ in range(n):
        dw = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device) * h**0.5
        x = x - h * grad_f(x) + lr**0.5 * torch.einsum("bij,bj->bi", noise_sqrt_cov(x), dw)
    return x


def side_by_side(grad_f: Grad, x0: torch.Tensor, *, lr: float, n_steps: int, momentum: float | None = None
                 ) -> dict[str, torch.Tensor]:
    """Run gradient descent (or heavy ball when ``momentum`` is given) and its continuous limit from
    the same x₀ on the same times.

    Returns:
        dict with ``t`` (n_steps + 1,) the continuous times of the iterates (k h, with h = lr for GD
        and √lr for heavy ball), ``discrete`` and ``continuous`` (n_steps + 1, B, d), and ``error``
        (n_steps + 1,) the largest distance between them over the batch.
    """
    if momentum is None:
        discrete = gradient_descent(grad_f, x0, lr=lr, n_steps=n_steps)
        t = lr * torch.arange(n_steps + 1, dtype=x0.dtype)
        continuous = gradient_flow(grad_f, x0, t)
    else:
        discrete = heavy_ball(grad_f, x0, lr=lr, momentum=momentum, n_steps=n_steps)
        h = lr**0.5
        t = h * torch.arange(n_steps + 1, dtype=x0.dtype)
        continuous = heavy_ball_flow(grad_f, x0, t, friction=(1.0 - momentum) / h)
    error = (discrete - continuous).norm(dim=-1).amax(dim=-1)
    return {"t": t, "discrete": discrete, "continuous": continuous, "error": error}
