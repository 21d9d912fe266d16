"""Certified error bounds: v* enclosed from one Bellman backup, rigorous in floating point.

**Which MDP the bounds are about.** The stored arrays ``mdp.P``, ``mdp.R``, ``mdp.gamma``, each
entry read as the exact real number it holds (so a float32 MDP is the MDP its float32 entries
describe). ``TabularMDP`` renormalises rows at construction, but after the cast to the dtype a
row may still sum to ``1 +- delta`` (``delta`` up to about one unit roundoff); that defect is
measured here, in float64, and carried into every bound. Rounding is carried too: the backup of
the certificate is computed in float64 (a float32 MDP is cast, exactly), and its rounding error
is bounded by Higham's dot-product bound. So ``error_bound`` is a true bound on ``||V - V*||_inf``
in every dtype, for every input the constructor accepts.

**The enclosure.** Let ``d = T v - v``, ``P >= 0`` with row sums in ``[sigma_lo, sigma_hi]`` and
``beta_pm = gamma sigma_hi/lo``. If ``T`` is sandwiched by policies, ``gamma P_{pi_v} (u - v) <=
T u - T v <= gamma P_{pi_u} (u - v)`` (true for the hard max, and for the soft max by convexity),
then ``v* - T v = sum_{k >= 1} (gamma P_pi)^k d`` for some policies, and

    T v + L(min d)  <=  v*  <=  T v + U(max d),

with ``U(x) = x beta_+ / (1 - beta_+)`` for ``x >= 0`` (``beta_-`` for ``x < 0``) and ``L`` the
other way round. With exactly stochastic rows (``beta_pm = gamma``) this is the MacQueen (1966) /
Porteus (1971) bound, Puterman (1994), §6.6.3, Thm 6.6.3: ``T v + c min d <= v* <= T v + c max d``,
``c = gamma / (1 - gamma)``. Computed values differ from exact ones by at most ``e_T`` (below), so
``min d - e`` and ``max d + e`` replace ``min d`` and ``max d``.

**Rounding.** A computed dot product of ``n`` nonzero terms has
``|fl(x^T y) - x^T y| <= gamma_n |x|^T |y|``, ``gamma_n = n u / (1 - n u)`` (Higham 2002,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1, eq. 3.5 and Lemma 3.1), any
summation order, FMA or not; exact zeros add no error, so ``n`` is the largest number of nonzeros
in a row of P. The backup ``q = r + gamma P v`` takes two more roundings, so
``e_q = gamma_{n+3} (||R||_inf + beta_+ ||v||_inf)`` with ``u = 2^-53`` in float64.

**The greedy policy.** If ``||V - V*||_inf <= eps`` and ``pi`` is greedy for the computed
``Q = q_backup(V)`` (each entry within ``e_Q`` of exact), then
``||V^pi - V*||_inf <= (2 beta_+ eps + 2 e_Q) / (1 - beta_+)`` — Singh & Yee (1994), "An upper
bound on the loss from approximate optimal-value functions", Machine Learning 16, Cor. 2
(``2 gamma eps / (1 - gamma)``); Puterman (1994), Thm 6.3.1(e); widened here by the row defect
and by rounding of the argmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mathml.rl.mdp import TabularMDP

__all__ = ["HardMax", "SoftMax", "Certificate", "certify", "rounding_floor", "unit_roundoff"]


def unit_roundoff(dtype: torch.dtype) -> float:
    """``u = eps / 2`` of a floating dtype: 2^-53 for float64, 2^-24 for float32."""
    return torch.finfo(dtype).eps / 2


def _gamma_n(n: int, u: float) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)`` (Higham 2002, Lemma 3.1)."""
    if n * u >= 0.5:
        raise ValueError(f"rows with {n} nonzeros are too long for a rounding bound at u={u:g}")
    return n * u / (1 - n * u)


class HardMax:
    """``(T v)(s) = max_a q(s, a)``: the Bellman optimality operator on ``q = q_backup(v)``."""

    name = "max"

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        return q.amax(-1)

    def rounding(self, q: torch.Tensor, tv: torch.Tensor, u: float) -> torch.Tensor:
        """Extra rounding of the reduction itself: none (a max is exact). Shape: batch."""
        return torch.zeros_like(tv[..., 0])

    def bias(self, num_actions: int) -> float:
        """Bound on ``T_op v - max_a q``: 0 (this is the max)."""
        return 0.0


class SoftMax:
    """``(T_tau v)(s) = tau log sum_a exp(q(s, a) / tau)`` (Ziebart 2010, thesis eq. 6.4;
    Haarnoja et al. 2017, eq. 4). tau: temperature > 0."""

    name = "softmax"

    def __init__(self, tau: float) -> None:
        self.tau = tau

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        return self.tau * torch.logsumexp(q / self.tau, dim=-1)

    def rounding(self, q: torch.Tensor, tv: torch.Tensor, u: float) -> torch.Tensor:
        """logsumexp = m + log sum exp(x - m): the divisions, exps (<= 2 ulp each), the A-term sum
        and the log give ``tau (2 A + 8) u``; the shift, the final add and the scaling by tau
        give ``4 u (||q||_inf + ||T v||_inf)``. Shape: batch."""
        A = q.shape[-1]
        mag = q.abs().amax((-2, -1)) + tv.abs().amax(-1)
        return u * ((2 * A + 8) * self.tau + 4 * mag)

    def bias(self, num_actions: int) -> float:
        """``0 <= T_tau v - max_a q <= tau log A``."""
        return self.tau * math.log(num_actions)


HARD_MAX = HardMax()


@dataclass
class _RowStats:
    P: torch.Tensor  # the P these were measured on (the cache key)
    sigma_lo: torch.Tensor  # (batch,) float64: guaranteed lower bound on every row sum
    sigma_hi: torch.Tensor  # (batch,) float64: guaranteed upper bound on every row sum
    n: int  # most nonzeros in a row
    r_max: torch.Tensor  # (batch,) float64: ||R||_inf
    R: torch.Tensor


def row_stats(mdp: TabularMDP) -> _RowStats:
    """Row-sum bounds of the stored P, measured in float64 (cached on the MDP while P and R stay).

    Row sums are summed in float64: ``|fl(sigma) - sigma| <= gamma_n sigma`` (Higham 2002, eq.
    3.5), so ``[fl(min) (1 - gamma_n), fl(max) (1 + 2 gamma_n)]`` contains every exact row sum.
    """
    cached = getattr(mdp, "_row_stats", None)
    if cached is not None and cached.P is mdp.P and cached.R is mdp.R:
        return cached
    P, S, A = mdp.P, mdp.num_states, mdp.num_actions
    if mdp.is_sparse:
        counts = P.crow_indices().diff()
        n = int(counts.max()) if counts.numel() else 0
        P64 = P if P.dtype == torch.float64 else _csr_values_as(P, torch.float64)
        sums = (P64 @ torch.ones(S, dtype=torch.float64, device=P.device)).view(S, A)
        lo, hi = sums.amin(), sums.amax()
    else:
        n = int((P != 0).sum(-1).amax()) if P.numel() else 0
        sums = P.sum(-1, dtype=torch.float64)  # (..., A, S)
        lo, hi = sums.amin((-2, -1)), sums.amax((-2, -1))
    g = _gamma_n(max(n, 1), unit_roundoff(torch.float64))
    stats = _RowStats(
        P, lo * (1 - g), hi * (1 + 2 * g), n,
        mdp.R.to(torch.float64).abs().amax((-2, -1)), mdp.R,
    )
    mdp._row_stats = stats
    return stats


def _csr_values_as(P: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    from mathml.rl._sparse import make_csr

    return make_csr(P.crow_indices(), P.col_indices(), P.values().to(dtype), tuple(P.shape))


def _float64_twin(mdp: TabularMDP) -> TabularMDP:
    """The same MDP with every array cast to float64 (exact: a float32 value is a float64 value)."""
    return mdp if mdp.dtype == torch.float64 else mdp.to(dtype=torch.float64)


def contraction_factors(mdp: TabularMDP) -> tuple[torch.Tensor, torch.Tensor]:
    """``(beta_-, beta_+) = gamma (sigma_lo, sigma_hi)``, rounded outward; (batch,) float64.

    Raises ValueError if ``beta_+ >= 1``: the stored rows then do not make a contraction.
    """
    st = row_stats(mdp)
    u = unit_roundoff(torch.float64)
    gamma = mdp.gamma.to(torch.float64)
    b_hi = gamma * st.sigma_hi * (1 + 2 * u)
    b_lo = gamma * st.sigma_lo * (1 - 2 * u)
    if bool((b_hi >= 1).any()):
        raise ValueError(
            f"gamma: gamma * (largest row sum of P) = {float(b_hi.max()):.17g} >= 1, so the stored MDP "
            f"is not a contraction (rows of P sum to at most {float(st.sigma_hi.max()):.17g} in "
            f"{mdp.dtype}); use float64 (mdp.to(dtype=torch.float64)) or a smaller gamma"
        )
    return b_lo, b_hi


def _sum_factor(beta: torch.Tensor, outward: int) -> torch.Tensor:
    """``beta / (1 - beta)``, rounded up (outward = +1) or down (-1) by a few units of u."""
    u = unit_roundoff(torch.float64)
    return beta / (1 - beta) * (1 + outward * 4 * u)


def _bshape(x: torch.Tensor, extra: int) -> torch.Tensor:
    return x.reshape(tuple(x.shape) + (1,) * extra)


@dataclass
class Certificate:
    """A guaranteed enclosure of v* from one backup of ``v``, and what it implies.

    V: (..., S) the enclosure's midpoint, in the MDP's dtype; bound: (...) float64, a true bound
    on ``||V - v*||_inf``; beta_hi: (...) the contraction factor ``gamma * max row sum``; e_T:
    (...) rounding radius of the backup; bias: ``0 <= T_op v - max_a q <= bias`` (0 for the hard
    max, ``tau log A`` for the soft one).
    """

    V: torch.Tensor
    bound: torch.Tensor
    beta_hi: torch.Tensor
    e_T: torch.Tensor
    bias: float

    def met(self, tol: float) -> bool:
        return bool((self.bound <= tol).all())


def certify(
    mdp: TabularMDP,
    v: torch.Tensor,
    operator: HardMax | SoftMax = HARD_MAX,
    *,
    q: torch.Tensor | None = None,
    tv: torch.Tensor | None = None,
) -> Certificate:
    """One backup of ``v`` turned into a guaranteed enclosure of the fixed point of ``operator``.

    See the module docstring for the bound and its sources. The backup is computed in float64
    (a lower-precision MDP is cast exactly); pass ``q = q_backup(mdp, v)`` and
    ``tv = operator(q)`` of a float64 MDP to reuse them. v: (..., S). Returns a ``Certificate``.
    """
    st = row_stats(mdp)
    b_lo, b_hi = contraction_factors(mdp)
    from mathml.rl.bellman import q_backup

    if mdp.dtype != torch.float64 or q is None or tv is None:
        v = v.to(torch.float64)
        q = q_backup(_float64_twin(mdp), v)
        tv = operator(q)
    u = unit_roundoff(torch.float64)
    v_norm = v.abs().amax(-1)
    e_q = _gamma_n(st.n + 3, u) * (st.r_max + b_hi * v_norm)
    e_T = e_q + operator.rounding(q, tv, u)
    d = tv - v
    e_d = e_T + 2 * u * d.abs().amax(-1)
    lo, hi = d.amin(-1) - e_d, d.amax(-1) + e_d
    c_hi_up, c_lo_dn = _sum_factor(b_hi, +1), _sum_factor(b_lo, -1)
    L = torch.where(lo >= 0, lo * c_lo_dn, lo * c_hi_up)
    U = torch.where(hi >= 0, hi * c_hi_up, hi * c_lo_dn)
    # v* lies in [tv - e_T + L, tv + e_T + U]; V is its midpoint, rounded to the dtype.
    V = (tv + _bshape((L + U) / 2, 1)).to(mdp.dtype)
    w = V.to(torch.float64) - tv
    bound = torch.maximum(w.amax(-1) + e_T - L, e_T + U - w.amin(-1))
    # Each of the few float64 operations above errs by at most u times the magnitudes involved.
    bound = bound + 4 * u * (tv.abs().amax(-1) + e_T + L.abs() + U.abs() + w.abs().amax(-1))
    return Certificate(V, bound, b_hi, e_T, operator.bias(mdp.num_actions))


def backup_rounding(mdp: TabularMDP, V: torch.Tensor) -> torch.Tensor:
    """Bound on ``|q_backup(mdp, V) - exact|`` per entry in the MDP's dtype. V: (..., S) -> (...)."""
    st = row_stats(mdp)
    _, b_hi = contraction_factors(mdp)
    return _gamma_n(st.n + 3, unit_roundoff(mdp.dtype)) * (st.r_max + b_hi * V.to(torch.float64).abs().amax(-1))


def policy_error_bound(cert: Certificate, error_bound: torch.Tensor, e_Q: torch.Tensor) -> torch.Tensor:
    """``||V^pi - V*||_inf`` for pi greedy in the computed ``Q = q_backup(V)`` (module docstring).

    For a soft operator, V approximates v*_tau, and ``0 <= v*_tau - v* <= bias / (1 - beta_+)``;
    that gap is added to ``eps`` so the bound is about the unregularised optimum v*.
    """
    b = cert.beta_hi
    eps = error_bound + cert.bias / (1 - b)
    return (2 * b * eps + 2 * e_Q) / (1 - b) * (1 + 8 * unit_roundoff(torch.float64))


def rounding_floor(mdp: TabularMDP, v: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The smallest bound the dtype can be expected to certify: ``c (u (||v*|| + ||R||) + e)``, (...).

    ``c = gamma / (1 - gamma)`` amplifies one rounding of a backup, ``u (||v*||_inf + ||R||_inf)``
    (u of the MDP's dtype: the iterates are stored in it), and ``e = gamma_{n+3}(||R|| + gamma ||v*||)`` (float64),
    the rounding radius of the certificate's own backup. ``||v*||_inf`` is bounded below from the
    enclosure of one backup: v: (..., S) an iterate, d: (..., S) ``T v - v`` (not necessarily exact).
    """
    st = row_stats(mdp)
    gamma = mdp.gamma.to(torch.float64)
    c = gamma / (1 - gamma)
    v, d = v.to(torch.float64), d.to(torch.float64)
    tv = v + d
    lo = tv + _bshape(c * d.amin(-1), 1)
    hi = tv + _bshape(c * d.amax(-1), 1)
    v_star = torch.where(lo > 0, lo, torch.where(hi < 0, -hi, torch.zeros_like(lo))).amax(-1)
    e = _gamma_n(st.n + 3, unit_roundoff(torch.float64)) * (st.r_max + gamma * v_star)
    return c * (unit_roundoff(mdp.dtype) * (v_star + st.r_max) + e)
