"""A finite-volume solver of the Fokker–Planck equation in one and two dimensions, conservative
and positivity-preserving.

For dX = μ(X, t) dt + diag(g(X, t)) dW the density obeys (Risken 1989, "The Fokker–Planck
Equation", eq. 4.94; Särkkä & Solin 2019, eq. 5.13)

    ∂p/∂t = −Σᵢ ∂ᵢ(μᵢ p) + Σᵢ ∂ᵢ²(Dᵢ p),   Dᵢ = ½ gᵢ²,

which we write in flux form ∂p/∂t = −∇·F, Fᵢ = μ̃ᵢ p − Dᵢ ∂ᵢp with μ̃ᵢ = μᵢ − ∂ᵢDᵢ. On a uniform grid of
cells, the flux through the face between cells k and k+1 (width h) is the Scharfetter–Gummel flux
(Scharfetter & Gummel 1969, IEEE Trans. Electron Devices 16, eq. 27; its use for Fokker–Planck
equations e.g. in Chang & Cooper 1970, J. Comput. Phys. 6, and Liu & Wang 2016):

    F_{k+½} = (D/h) [B(−Pe) p_k − B(Pe) p_{k+1}],   Pe = μ̃ h / D,   B(z) = z / (e^z − 1),

exact for a constant μ̃ and D across the face, central for Pe → 0 and upwind for |Pe| → ∞. With zero
flux through the outer faces, dp/dt = A p where A's off-diagonal entries are ≥ 0 and its columns sum
to 0. Implicit Euler, (I − Δt A) pⁿ⁺¹ = pⁿ, then keeps mass Σ p h^d exactly (to rounding; 1ᵀ(I − Δt A)
= 1ᵀ) and p ≥ 0 ((I − Δt A) is an M-matrix, so its inverse is entrywise non-negative; Varga 2000,
"Matrix Iterative Analysis", Thm 3.18), at any Δt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from mathml.checks import check_positive, check_positive_int

Field = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class FokkerPlanckGrid:
    """A uniform grid of cells on the box [lows, highs] in d = 1 or 2 dimensions.

    Args:
        lows, highs: (d,) box corners. cells: (d,) number of cells per dimension.
    """

    lows: tuple[float, ...]
    highs: tuple[float, ...]
    cells: tuple[int, ...]

    def __post_init__(self) -> None:
        d = len(self.cells)
        if d not in (1, 2) or len(self.lows) != d or len(self.highs) != d:
            raise ValueError(f"lows, highs and cells must all have length 1 or 2, got {self.lows}, {self.highs}, {self.cells}")
        for n in self.cells:
            check_positive_int(n, "cells")
        if any(hi <= lo for lo, hi in zip(self.lows, self.highs)):
            raise ValueError(f"highs must exceed lows, got lows={self.lows}, highs={self.highs}")

    @property
    def dim(self) -> int:
        return len(self.cells)

    @property
    def widths(self) -> tuple[float, ...]:
        """Cell widths h per dimension."""
        return tuple((hi - lo) / n for lo, hi, n in zip(self.lows, self.highs, self.cells))

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.widths))

    def axes(self) -> list[torch.Tensor]:
        """Cell-centre coordinates per dimension, each (n_i,) float64."""
        return [torch.tensor(lo + (np.arange(n) + 0.5) * h) for lo, n, h in zip(self.lows, self.cells, self.widths)]

    def centres(self) -> torch.Tensor:
        """(N, d) cell centres in row-major order (the last dimension varies fastest)."""
        mesh = torch.meshgrid(*self.axes(), indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=1)

    def mass(self, p: torch.Tensor) -> torch.Tensor:
        """∫ p ≈ Σ p h^d over the trailing grid dims of ``p: (..., *cells)``."""
        return p.flatten(-self.dim).sum(-1) * self.cell_volume


def _bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (e^z − 1), B(0) = 1, without overflow for large |z|."""
    out = np.ones_like(z)
    small = np.abs(z) < 1e-8
    big = z > 700.0
    mid = ~small & ~big
    out[mid] = z[mid] / np.expm1(z[mid])
    out[big] = z[big] * np.exp(-z[big])
    out[small] = 1.0 - 0.5 * z[small]
    return out


def fokker_planck_operator(grid: FokkerPlanckGrid, drift: Field, diffusion: Field, t: float = 0.0) -> sp.csc_matrix:
    """The finite-volume generator A (N × N, N = prod(cells)) with dp/dt = A p at time t.

    Args:
        grid: the cells.
        drift: μ(x, t), ``x: (M, d)`` float64 → ``(M, d)``.
        diffusion: the diagonal g(x, t) of the SDE's noise coefficient, ``(M, d)`` → ``(M, d)``
            (D = ½ g²).
        t: time at which μ and g are evaluated.
    """
    d, widths, cells = grid.dim, grid.widths, grid.cells
    n_total = int(np.prod(cells))
    index = np.arange(n_total).reshape(cells)
    centres = grid.centres()
    d_centre = (0.5 * diffusion(centres, t).to(torch.float64) ** 2).numpy().reshape(*cells, d)
    rows, cols, vals = [], [], []
    for axis in range(d):
        h = widths[axis]
        lo = [slice(None)] * d
        hi = [slice(None)] * d
        lo[axis], hi[axis] = slice(0, cells[axis] - 1), slice(1, cells[axis])
        left, right = index[tuple(lo)].reshape(-1), index[tuple(hi)].reshape(-1)
        if left.size == 0:
            continue
        faces = centres[left].clone()
        faces[:, axis] += 0.5 * h
        mu = drift(faces, t).to(torch.float64).numpy()[:, axis]
        d_face = 0.5 * diffusion(faces, t).to(torch.float64).numpy()[:, axis] ** 2
        # μ̃ = μ − ∂D/∂x, the derivative by the difference of the cell-centre D across the face.
        dc = d_centre[..., axis].reshape(-1)
        mu_eff = mu - (dc[right] - dc[left]) / h
        if np.any(d_face <= 0):
            raise ValueError("diffusion must be non-zero at every face (a pure-drift equation needs another scheme)")
        pe = mu_eff * h / d_face
        a = d_face * _bernoulli(-pe) / h**2   # coefficient of p_left in F/h
        b = d_face * _bernoulli(pe) / h**2    # coefficient of p_right in F/h
        rows += [left, left, right, right]
        cols += [left, right, left, right]
        vals += [-a, b, a, -b]
    if not rows:
        return sp.csc_matrix((n_total, n_total))
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_total, n_total))


@dataclass
class FokkerPlanckSolution:
    """Densities of a Fokker–Planck solve.

    Attributes:
        times: (T,) the requested times.
        density: (T, *cells) cell-average densities at those times (float64).
        grid: the cells.
        steps: implicit-Euler steps taken.
    """

    times: torch.Tensor
    density: torch.Tensor
    grid: FokkerPlanckGrid
    steps: int


def solve_fokker_planck(
    grid: FokkerPlanckGrid,
    drift: Field,
    diffusion: Field,
    p0: torch.Tensor,
    times: Sequence[float] | torch.Tensor,
    *,
    dt: float,
    time_homogeneous: bool = False,
) -> FokkerPlanckSolution:
    """Evolve the density ``p0`` by implicit Euler on the Scharfetter–Gummel finite-volume
    discretisation (module docstring) and return it at ``times``.

    Mass Σ p h^d is conserved to rounding and p stays non-negative at every step, for any dt.

    Args:
        grid: the cells (1-D or 2-D).
        drift, diffusion: μ(x, t) and the diagonal g(x, t), ``(M, d)`` → ``(M, d)``.
        p0: (*cells) initial cell-average density (non-negative).
        times: increasing times ≥ 0 (the solve starts at t = 0; steps end exactly on each time).
        dt: the largest step.
        time_homogeneous: μ and g do not depend on t: factorise I − Δt A once per distinct Δt.

    Returns:
        ``FokkerPlanckSolution`` with ``density: (len(times), *cells)``.
    """
    if not isinstance(grid, FokkerPlanckGrid):
        raise TypeError(f"grid must be a FokkerPlanckGrid, got {type(grid).__name__}")
    p = torch.as_tensor(p0, dtype=torch.float64)
    if tuple(p.shape) != grid.cells:
        raise ValueError(f"p0 must have the grid's shape {grid.cells}, got {tuple(p.shape)}")
    if bool((p < 0).any()):
        raise ValueError("p0 must be non-negative")
    check_positive(dt, "dt")
    ts = torch.as_tensor(times, dtype=torch.float64).flatten()
    if ts.numel() == 0 or bool((ts < 0).any()) or bool((ts[1:] <= ts[:-1]).any()):
        raise ValueError(f"times must be non-empty, non-negative and increasing, got {ts.tolist()}")
    n_total = int(np.prod(grid.cells))
    eye = sp.identity(n_total, format="csc")
    vec = p.reshape(-1).numpy().copy()
    out, t, steps = [], 0.0, 0
    cache: dict[float, object] = {}
    a_fixed = fokker_planck_operator(grid, drift, diffusion, 0.0) if time_homogeneous else None
    for target in ts.tolist():
        while t < target - 1e-14 * max(1.0, target):
            h = min(dt, target - t)
            if time_homogeneous:
                key = round(h, 15)
                if key not in cache:
                    cache[key] = spla.splu((eye - h * a_fixed).tocsc())
                lu = cache[key]
            else:
                lu = spla.splu((eye - h * fokker_planck_operator(grid, drift, diffusion, t + h)).tocsc())
            vec = lu.solve(vec)
            t += h
            steps += 1
        out.append(torch.from_numpy(vec.copy()).reshape(grid.cells))
    return FokkerPlanckSolution(times=ts, density=torch.stack(out), grid=grid, steps=steps)
