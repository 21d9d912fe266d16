"""The contract of a linear (affine-drift) diffusion SDE, in torchsde's protocol.

Every SDE here has the form (Song et al. 2021, "Score-Based Generative Modeling through Stochastic
Differential Equations", ICLR, eq. 5, with a drift linear in x)

    dx = f(t) x dt + g(t) dw,        t ∈ [0, T],

so its transition from a data point x(0) = x₀ is Gaussian (Song et al. 2021, App. B, eq. 29;
Särkkä & Solin 2019, "Applied Stochastic Differential Equations", eqs. 6.2–6.3):

    x(t) | x₀ ~ N(α_t x₀, σ_t² I),   α_t = exp(∫₀ᵗ f),   dσ_t²/dt = 2 f(t) σ_t² + g(t)².

We write α_t and σ_t as in Lu et al. 2022 (DPM-Solver, §2.1) and Kingma et al. 2021 (VDM), and
λ_t = log(α_t² / σ_t²) for the log signal-to-noise ratio. Time runs from data (t = 0) to noise
(t = T). Subclasses give α_t, σ_t, f(t), g(t)² and the inverse of λ_t in closed form.

torchsde's protocol: ``noise_type = "diagonal"``, ``sde_type = "ito"``, ``f(t, y)`` and ``g(t, y)``
on a state ``y: (B, D)``; because the drift is f(t)·y and the noise is g(t)·I, the same methods
also work on any data shape ``(B, ...)``.
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn
from torch.distributions import Independent, Normal


def append_dims(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """Broadcast a per-sample value against data: ``v: (B,)`` (or ``()``) → ``(B, 1, ..., 1)`` with
    ``ndim`` dimensions in all. The one place where per-sample scalars meet data tensors."""
    if v.dim() > ndim:
        raise ValueError(f"cannot broadcast a tensor of shape {tuple(v.shape)} against {ndim}-d data")
    return v.reshape(*v.shape, *([1] * (ndim - v.dim())))


def as_time(t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Times as a ``(B,)`` tensor on ``like``'s device and dtype, for data ``like: (B, ...)``.

    A Python number or a 0-d tensor is expanded to every sample; a ``(B,)`` tensor is kept."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        return t.expand(like.shape[0])
    if t.shape != like.shape[:1]:
        raise ValueError(f"t must be a number or have shape (B,) = ({like.shape[0]},), got {tuple(t.shape)}")
    return t


class LinearSDE(nn.Module, abc.ABC):
    """Abstract linear diffusion SDE dx = f(t) x dt + g(t) dw on t ∈ [0, T].

    Concrete subclasses (``VPSDE``, ``SubVPSDE``, ``VESDE``, ``EDMSDE``) are final: variants come
    from their constructor arguments. Scalar-time methods take ``t`` as a tensor of any shape and
    return the same shape, in ``t``'s dtype.

    Attributes:
        T: the end time (noise).
        t_min: the smallest time samplers and likelihoods stop at (the "ε" of Song et al. 2021,
            App. C, where t → 0 is numerically unstable).
    """

    noise_type = "diagonal"
    sde_type = "ito"
    T: float
    t_min: float

    # -- closed forms every subclass gives ------------------------------------------------------
    @abc.abstractmethod
    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(α_t, σ_t): the transition x(t) | x₀ ~ N(α_t x₀, σ_t² I)."""

    @abc.abstractmethod
    def drift_coefficient(self, t: torch.Tensor) -> torch.Tensor:
        """f(t), with drift f(x, t) = f(t) x."""

    @abc.abstractmethod
    def diffusion_squared(self, t: torch.Tensor) -> torch.Tensor:
        """g(t)²."""

    @abc.abstractmethod
    def t_from_log_snr(self, log_snr: torch.Tensor) -> torch.Tensor:
        """The inverse of λ_t = log(α_t² / σ_t²) (monotone decreasing in t)."""

    @property
    @abc.abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the prior N(0, prior_std² I) that samplers start from at t = T."""

    # -- derived -------------------------------------------------------------------------------
    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """λ_t = log(α_t² / σ_t²) = 2 (log α_t − log σ_t)."""
        alpha, sigma = self.alpha_sigma(t)
        return 2.0 * (torch.log(alpha) - torch.log(sigma))

    def marginal(self, x0: torch.Tensor, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of x(t) | x(0) = x₀ (Song et al. 2021, eq. 29).

        Args:
            x0: (B, ...) data.
            t: a number or (B,) times in [0, T].

        Returns:
            mean: (B, ...) = α_t x₀; std: (B, 1, ..., 1) = σ_t, broadcastable against x₀.
        """
        t = self._check_t(as_time(t, x0))
        alpha, sigma = self.alpha_sigma(t)
        return append_dims(alpha, x0.dim()) * x0, append_dims(sigma, x0.dim())

    def perturb(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = α_t x₀ + σ_t ε for given ``noise`` ε of x₀'s shape (the reparameterised transition)."""
        mean, std = self.marginal(x0, t)
        return mean + std * noise

    def prior(self, event_shape: tuple[int, ...] | torch.Size = (), *, dtype=None, device=None) -> Independent:
        """The prior p_T = N(0, prior_std² I) as a torch Distribution with the given event shape."""
        shape = tuple(event_shape)
        loc = torch.zeros(shape, dtype=dtype or torch.get_default_dtype(), device=device)
        return Independent(Normal(loc, torch.full_like(loc, self.prior_std)), len(shape))

    def prior_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log N(x; 0, prior_std² I) in nats, summed over the data dims: ``x: (B, ...)`` → ``(B,)``."""
        d = x[0].numel()
        s2 = self.prior_std**2
        return -0.5 * x.flatten(1).pow(2).sum(1) / s2 - 0.5 * d * math.log(2 * math.pi * s2)

    def prior_sample(self, shape: tuple[int, ...], *, generator=None, dtype=None, device=None) -> torch.Tensor:
        """x_T ~ N(0, prior_std² I) of ``shape = (B, ...)``, drawn from ``generator``."""
        dev = device if device is not None else (generator.device if generator is not None else None)
        return self.prior_std * torch.randn(shape, generator=generator, dtype=dtype, device=dev)

    # -- torchsde protocol on (B, D) (works on any (B, ...) too) -------------------------------
    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Drift f(t) y."""
        t = as_time(t, y)
        return append_dims(self.drift_coefficient(t), y.dim()) * y

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Diagonal diffusion g(t) (the same for every coordinate), shape of y."""
        t = as_time(t, y)
        return append_dims(self.diffusion_squared(t).sqrt(), y.dim()).expand_as(y)

    # -- checks ---------------------------------------------------------------------------------
    def _check_t(self, t: torch.Tensor) -> torch.Tensor:
        if t.device.type == "cpu":  # on accelerators the check would cost a device sync per call
            bad = (t < 0) | (t > self.T * (1 + 1e-6)) | torch.isnan(t)
            if bool(bad.any()):
                raise ValueError(f"t must lie in [0, T] = [0, {self.T}], got values in "
                                 f"[{t.min().item()}, {t.max().item()}]")
        return t

    def extra_repr(self) -> str:
        return f"T={self.T}, t_min={self.t_min}"
