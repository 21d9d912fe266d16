"""Two-dimensional toy distributions for density models and samplers, drawn with an injected generator.

Sets of this kind are the standard 2-D benchmarks of normalising flows and score models, e.g.
Grathwohl et al. 2019 (FFJORD), Sec. 5.1 and Fig. 2; the parameterisations below are ours and are
written out in each docstring.
"""

from __future__ import annotations

import math

import torch

from mathml.checks import check_choice, check_generator, check_nonnegative, check_positive_int


def _check(n: int, generator: torch.Generator | None, **scales: float) -> None:
    check_positive_int(n, "n")
    check_generator(generator)
    for name, value in scales.items():
        check_nonnegative(value, name)


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def two_moons(n: int, *, generator: torch.Generator | None = None, noise: float = 0.05) -> torch.Tensor:
    """Two interleaved half circles (the "moons" of scikit-learn's ``make_moons``).

    With θ ~ U(0, π) and a fair coin c: c = 0 gives (cos θ, sin θ), c = 1 gives
    (1 − cos θ, 1/2 − sin θ); then x = that + noise · ε, ε ~ N(0, I₂).

    Returns:
        x: (n, 2) float32.
    """
    _check(n, generator, noise=noise)
    dev = _device(generator)
    theta = math.pi * torch.rand(n, generator=generator, device=dev)
    c = torch.randint(0, 2, (n,), generator=generator, device=dev).bool()
    upper = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    lower = torch.stack([1.0 - torch.cos(theta), 0.5 - torch.sin(theta)], dim=1)
    x = torch.where(c[:, None], lower, upper)
    return x + noise * torch.randn(n, 2, generator=generator, device=dev)


def gaussian_mixture_2d(
    n: int,
    *,
    generator: torch.Generator | None = None,
    n_modes: int = 8,
    radius: float = 2.0,
    std: float = 0.1,
) -> torch.Tensor:
    """Equal-weight Gaussian mixture with ``n_modes`` modes evenly spaced on a circle.

    p(x) = (1/K) Σ_k N(x; μ_k, std² I₂) with μ_k = radius · (cos 2πk/K, sin 2πk/K), K = n_modes
    (the "8 Gaussians" set of FFJORD, Grathwohl et al. 2019, Fig. 2, for K = 8).

    Returns:
        x: (n, 2) float32.
    """
    _check(n, generator, radius=radius, std=std)
    check_positive_int(n_modes, "n_modes")
    dev = _device(generator)
    k = torch.randint(0, n_modes, (n,), generator=generator, device=dev)
    angle = 2.0 * math.pi * k.to(torch.float32) / n_modes
    mu = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return mu + std * torch.randn(n, 2, generator=generator, device=dev)


def swiss_roll_2d(n: int, *, generator: torch.Generator | None = None, noise: float = 0.05) -> torch.Tensor:
    """A 2-D Swiss roll (an Archimedean spiral), scaled to roughly [-1.5, 1.5]².

    t = (3π/2)(1 + 2u), u ~ U(0, 1); x = (t cos t, t sin t) / 10 + noise · ε, ε ~ N(0, I₂).
    (The spiral cross-section of the Swiss roll of Tenenbaum et al. 2000, Fig. 1; a toy set of FFJORD.)

    Returns:
        x: (n, 2) float32.
    """
    _check(n, generator, noise=noise)
    dev = _device(generator)
    t = 1.5 * math.pi * (1.0 + 2.0 * torch.rand(n, generator=generator, device=dev))
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / 10.0
    return x + noise * torch.randn(n, 2, generator=generator, device=dev)


def checkerboard(n: int, *, generator: torch.Generator | None = None, cells: int = 4) -> torch.Tensor:
    """Uniform density on the dark squares of a ``cells`` × ``cells`` board covering [-cells/2, cells/2]².

    Square (i, j), i, j ∈ {0..cells−1}, is dark when i + j is odd; a draw picks one of the dark
    squares uniformly and a uniform point inside it (FFJORD's "checkerboard", Fig. 2, for cells = 4).
    ``cells`` must be even so every column has cells/2 dark squares.

    Returns:
        x: (n, 2) float32.
    """
    _check(n, generator)
    if isinstance(cells, bool) or not isinstance(cells, int) or cells < 2 or cells % 2:
        raise ValueError(f"cells must be an even int >= 2, got {cells!r}")
    dev = _device(generator)
    i = torch.randint(0, cells, (n,), generator=generator, device=dev)
    j = 2 * torch.randint(0, cells // 2, (n,), generator=generator, device=dev) + (1 - i % 2)
    u = torch.rand(n, 2, generator=generator, device=dev)
    return torch.stack([i, j], dim=1).to(torch.float32) + u - cells / 2


TOY_2D_SETS = {
    "two_moons": two_moons,
    "gaussian_mixture_2d": gaussian_mixture_2d,
    "swiss_roll_2d": swiss_roll_2d,
    "checkerboard": checkerboard,
}


def toy_2d(name: str, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` points from the toy set ``name`` (a key of ``TOY_2D_SETS``) with default parameters.

    Returns:
        x: (n, 2) float32.
    """
    check_choice(name, "name", tuple(TOY_2D_SETS))
    return TOY_2D_SETS[name](n, generator=generator)


def toy_2d_splits(
    name: str, *, n_train: int, n_val: int, n_test: int, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Train, val and test sets of the toy set ``name``: independent draws made at once.

    One call ``toy_2d(name, n_train + n_val + n_test, generator=generator)`` is cut in that order,
    so the same generator state always gives the same three sets.

    Returns:
        ``{"train": (n_train, 2), "val": (n_val, 2), "test": (n_test, 2)}`` float32 tensors.
    """
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    for split, n in sizes.items():
        check_positive_int(n, f"n_{split}")
    x = toy_2d(name, sum(sizes.values()), generator=generator)
    return dict(zip(sizes, x.split(list(sizes.values()))))
