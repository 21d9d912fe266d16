"""The one stopping rule of the infinite-horizon planners, and the one way they finish.

Every planner computes, once per outer iteration, ``q = q_backup(mdp, v)`` and ``T v`` and hands
them to a ``Stopper``. It stops when the certificate of ``mathml.rl.certificate`` meets ``tol``:

* the span half-width ``c sp(T v - v) / 2``, in the MDP's dtype, screens (two reductions);
* only when it is <= tol is the certificate computed: from that same backup for a float64 MDP,
  from one float64 backup otherwise; if it fails, the next try waits ``patience`` iterations.

After a failed certificate the planner continues from its midpoint (``next_iterate``): an
iterate near v* in level as well as in shape, so the rounding it suffers is relative to
``||v*||``, not to the level of the start (MPI starts at ``min r / (1 - gamma)``).

``tol`` is unreachable, and a ValueError says so, when: ``tol`` is below ``rounding_floor``
(``c u (||v*|| + ||R||)``, checked at the first iteration); or a certificate fails 3 times; or the
half-width, already at rounding level, stops improving for ``patience`` iterations.
"""

from __future__ import annotations

import math

import torch

from mathml.checks import check_positive, check_positive_int
from mathml.rl.bellman import _gamma, greedy_policy, q_backup
from mathml.rl.certificate import (
    HARD_MAX,
    Certificate,
    HardMax,
    SoftMax,
    backup_rounding,
    certify,
    contraction_factors,
    policy_error_bound,
    rounding_floor,
    row_stats,
    unit_roundoff,
)
from mathml.rl.mdp import TabularMDP
from mathml.rl.result import PlanningResult


def check_iteration_args(tol: object, max_iter: object) -> float:
    check_positive_int(max_iter, "max_iter")
    return check_positive(tol, "tol")


class Stopper:
    """Decides, from one backup per iteration, when a planner may stop (see module docstring).

    mdp: the MDP; tol: target for ``error_bound``; name: the planner (for messages); operator:
    ``HardMax()`` or ``SoftMax(tau)``; patience: iterations without progress that mean stagnation.
    """

    def __init__(
        self, mdp: TabularMDP, tol: float, name: str, operator: HardMax | SoftMax = HARD_MAX, patience: int = 30
    ) -> None:
        self.mdp, self.tol, self.name, self.operator, self.patience = mdp, tol, name, operator, patience
        self.exact = mdp.dtype == torch.float64
        self.c = _gamma(mdp, 0) / (1 - _gamma(mdp, 0))
        self.residuals: list[float] = []
        self.n = 0
        self.best, self.best_at, self.next_try = math.inf, 0, 0
        self.failures, self.max_failures = 0, 3
        self.restart: torch.Tensor | None = None
        # Row sums measured now, before any backup holds (S, A) values: a lower peak of memory;
        # a non-contracting stored MDP is refused before any work.
        contraction_factors(mdp)

    def __call__(self, v: torch.Tensor, q: torch.Tensor, tv: torch.Tensor) -> Certificate | None:
        """v: (..., S) iterate; q: (..., S, A) its backup; tv: (..., S) ``operator(q)``."""
        self.n += 1
        d = tv - v
        if self.n == 1:
            self._check_floor(v, d)
        width = float((self.c * (d.amax(-1) - d.amin(-1)) / 2).max())
        self.residuals.append(width)
        if width <= self.tol and self.n >= self.next_try:
            cert = self._certify(v, q, tv)
            if cert.met(self.tol):
                return cert
            self.failures += 1
            if self.failures >= self.max_failures:
                raise self.unreachable(cert)
            self.next_try = self.n + self.patience
            self.restart = cert.V
        if width < self.best:
            self.best, self.best_at = width, self.n
        elif self.n - self.best_at >= self.patience and self.best <= self._near_floor(v):
            cert = self._certify(v, q, tv)
            if cert.met(self.tol):
                return cert
            raise self.unreachable(cert)
        return None

    def next_iterate(self, tv: torch.Tensor) -> torch.Tensor:
        """``T v``, or after a failed certificate its midpoint V: an iterate near v* in level too,
        so that rounding (relative to the values' magnitude) is that of ``||v*||``."""
        if self.restart is None:
            return tv
        v, self.restart = self.restart, None
        return v

    def _near_floor(self, v: torch.Tensor) -> float:
        """``8 (n + 3) c u (||v|| + ||R||)``: half-widths this small may be rounding noise."""
        st = row_stats(self.mdp)
        scale = v.to(torch.float64).abs().amax(-1) + st.r_max
        c = self.c.to(torch.float64)
        return float((8 * (st.n + 3) * c * unit_roundoff(self.mdp.dtype) * scale).max())

    def _certify(self, v: torch.Tensor, q: torch.Tensor, tv: torch.Tensor) -> Certificate:
        # float64: the certificate reuses this backup; lower precision: one float64 backup.
        if self.exact:
            return certify(self.mdp, v, self.operator, q=q, tv=tv)
        return certify(self.mdp, v, self.operator)

    def final(self, v: torch.Tensor) -> Certificate:
        """The certificate of the last iterate (iteration cap reached, or an exact solve)."""
        return certify(self.mdp, v, self.operator)

    def unreachable(self, cert: Certificate) -> ValueError:
        return ValueError(
            f"{self.name}: tol={self.tol:g} is not reachable in {self.mdp.dtype}: the certified bound "
            f"stopped improving at {float(cert.bound.max()):.3g} (gamma={float(self.mdp.gamma.max()):g}: "
            f"rounding is amplified by c = gamma/(1-gamma) = {float(self.c.max()):.3g}). "
            f"{self._fix()}"
        )

    def _fix(self) -> str:
        if self.exact:
            return "Use a larger tol or a smaller gamma."
        return "Use float64 (mdp.to(dtype=torch.float64)) or a larger tol."

    def _check_floor(self, v: torch.Tensor, d: torch.Tensor) -> None:
        floor = rounding_floor(self.mdp, v, d)
        if bool((self.tol < floor).any()):
            f = float(floor.max())
            raise ValueError(
                f"{self.name}: tol={self.tol:g} is below the rounding floor {f:.3g} of {self.mdp.dtype} "
                f"for this MDP (c u (||v*|| + ||R||) with c = gamma/(1-gamma) = {float(self.c.max()):.3g}, "
                f"u = {unit_roundoff(self.mdp.dtype):.3g}: one rounding of a backup, amplified by c); "
                f"no certificate can be expected to reach it. "
                f"{self._fix()} (tol >= {f:.2g})"
            )


def finish(mdp: TabularMDP, cert: Certificate, iterations: int, stopper: Stopper) -> PlanningResult:
    """The result of a certificate: V its midpoint, Q = q_backup(V), the greedy policy, the bounds."""
    V = cert.V
    Q = q_backup(mdp, V)
    policy = greedy_policy(Q, Q.amax(-1))
    e_Q = backup_rounding(mdp, V)
    return PlanningResult(
        V, Q, policy, iterations, stopper.residuals, cert.bound, cert.met(stopper.tol), stopper.name,
        policy_error_bound(cert, cert.bound, e_Q), stopper.tol,
    )
