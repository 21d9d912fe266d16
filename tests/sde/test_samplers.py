"""Samplers with the exact Gaussian-mixture score: they reach the target distribution, count their
score evaluations as declared, agree with torchsde where they should, and reject bad arguments."""

import math

import pytest
import torch
import torchsde

from mathml.distributions import GaussianMixture
from mathml.sde import (
    EDMSDE,
    VESDE,
    VPSDE,
    ddim,
    dpm_solver_2m,
    dpm_solver_3m,
    dpm_solver_sde,
    edm_stochastic,
    euler_maruyama,
    exponential_adams,
    karras_grid,
    log_snr_grid,
    nfe,
    pf_ode_dopri5,
    pf_ode_euler,
    pf_ode_heun,
    predictor_corrector,
    reverse_sde,
    torchsde_sampler,
    uniform_grid,
)

F64 = torch.float64


def mixture() -> GaussianMixture:
    """A 3-component 2-D mixture with unequal weights, spreads and correlations."""
    means = torch.tensor([[-2.0, 0.0], [1.5, 1.5], [1.0, -2.5]], dtype=F64)
    covs = torch.tensor([[[0.04, 0.0], [0.0, 0.04]], [[0.25, 0.1], [0.1, 0.25]], [[1.0, -0.3], [-0.3, 0.5]]], dtype=F64)
    return GaussianMixture(torch.tensor([0.5, 0.3, 0.2], dtype=F64), means, covs)


# (sampler, steps, options): enough steps that the discretisation bias is well below the sampling error.
CASES = [
    (euler_maruyama, 200, {}),
    (torchsde_sampler, 20, dict(method="srk")),
    (predictor_corrector, 100, dict(snr=0.1, corrector_steps=1)),
    (pf_ode_euler, 200, {}),
    (pf_ode_heun, 40, {}),
    (pf_ode_dopri5, 1, dict(rtol=1e-6, atol=1e-6)),
    (ddim, 100, {}),
    (ddim, 100, dict(eta=1.0)),
    (dpm_solver_2m, 40, {}),
    (dpm_solver_3m, 25, {}),
    (exponential_adams, 20, {}),
    (dpm_solver_sde, 50, {}),
    (edm_stochastic, 60, dict(s_churn=20.0, s_tmin=0.05, s_tmax=20.0)),
    (euler_maruyama, 200, dict(denoise=True)),
]


def _statistics(x: torch.Tensor) -> torch.Tensor:
    """Per sample: x₁, x₂, x₁², x₂², x₁x₂ → (n, 5)."""
    return torch.stack([x[:, 0], x[:, 1], x[:, 0] ** 2, x[:, 1] ** 2, x[:, 0] * x[:, 1]], dim=1)


def _exact_statistics(gm: GaussianMixture) -> torch.Tensor:
    w, mu, cov = gm.weights, gm.means, gm.covariances
    m = (w[:, None] * mu).sum(0)
    second = (w[:, None, None] * (cov + mu[:, :, None] * mu[:, None, :])).sum(0)
    return torch.stack([m[0], m[1], second[0, 0], second[1, 1], second[0, 1]])


@pytest.mark.parametrize("sampler, steps, options", CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_sampler_reaches_the_target(sampler, steps, options):
    # x_T ~ prior with a fixed seed, n = 2000 samples; the means of the first and second moments must lie
    # within 4 standard errors (SE = sample std / √n of each statistic) of their exact values under
    # p_{t_min} (the diffused mixture; with denoise=True the clean mixture, whose moments differ from
    # p_{t_min}'s by σ_{t_min}² ≈ 1e-4, far below the SE). Fixed seed: the outcome is deterministic.
    sde, gm, n = VPSDE(), mixture(), 2000
    gen = torch.Generator().manual_seed(1234)
    x_T = sde.prior_sample((n, 2), generator=gen, dtype=F64)
    x = sampler(sde, gm.score_fn(sde), x_T, steps=steps, generator=gen, **options)
    assert x.shape == x_T.shape and x.dtype == F64
    target = gm if options.get("denoise") else gm.marginal(sde, sde.t_min)
    stats = _statistics(x)
    se = stats.std(0) / math.sqrt(n)
    err = (stats.mean(0) - _exact_statistics(target)).abs()
    assert bool((err < 4 * se).all()), f"error / SE = {(err / se).tolist()}"


def _counting(score):
    calls = []

    def counted(x, t):
        assert t.shape == x.shape[:1]
        calls.append(1)
        return score(x, t)

    return counted, calls


@pytest.mark.parametrize("sampler, options", [
    (euler_maruyama, {}), (torchsde_sampler, {}), (torchsde_sampler, dict(method="srk")),
    (torchsde_sampler, dict(method="milstein")), (predictor_corrector, dict(corrector_steps=2)),
    (pf_ode_euler, {}), (pf_ode_heun, dict(denoise=True)), (ddim, dict(eta=0.5)), (dpm_solver_2m, {}),
    (dpm_solver_3m, dict(lower_order_final=True)), (edm_stochastic, dict(s_churn=5.0)),
    (exponential_adams, {}), (exponential_adams, dict(prediction="data", order=4, corrector=False)),
    (dpm_solver_sde, {}),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_score_evaluations_match_the_declared_count(sampler, options):
    sde, gm = VPSDE(), mixture()
    score, calls = _counting(gm.score_fn(sde))
    x_T = sde.prior_sample((8, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    sampler(sde, score, x_T, steps=8, generator=torch.Generator().manual_seed(1), **options)
    assert len(calls) == nfe(sampler, 8, **options) == sampler.nfe(8, **options)


def test_dopri5_reports_its_evaluations():
    sde, gm = VPSDE(), mixture()
    score, calls = _counting(gm.score_fn(sde))
    x_T = sde.prior_sample((8, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    _, count = pf_ode_dopri5(sde, score, x_T, steps=1, return_nfe=True)
    assert count == len(calls) > 10 and nfe(pf_ode_dopri5, 1) is None


def test_euler_maruyama_loop_equals_torchsde_euler_on_the_same_brownian_path():
    # ENV.md gotcha 5: a plain loop driven by the same BrownianInterval equals sdeint(method="euler")
    # to rounding. t_min = 2⁻¹⁰ and N = 16 make every s = T − t exact in binary, so both query the
    # Brownian path at identical times.
    sde, gm, n, steps = VPSDE(t_min=2.0 ** -10), mixture(), 64, 16
    x_T = sde.prior_sample((n, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    s_end = sde.T - sde.t_min

    def path():
        return torchsde.BrownianInterval(t0=0.0, t1=s_end, size=(n, 2), dtype=F64, entropy=7)

    ts = torch.tensor([0.0, s_end], dtype=F64)
    ref = torchsde.sdeint(reverse_sde(sde, gm.score_fn(sde)), x_T, ts, bm=path(), method="euler", dt=s_end / steps)[-1]
    ours = euler_maruyama(sde, gm.score_fn(sde), x_T, steps=steps, brownian=path())
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    via_wrapper = torchsde_sampler(sde, gm.score_fn(sde), x_T, steps=steps, brownian=path())
    torch.testing.assert_close(via_wrapper, ref, rtol=0, atol=0)


@pytest.mark.parametrize("sde", [VESDE(), EDMSDE()], ids=lambda s: type(s).__name__)
def test_samplers_work_for_ve_and_edm_and_any_data_shape(sde):
    # Data of shape (B, 2, 1): the samplers never assume (B, D). Deterministic solvers of order ≥ 2
    # agree with each other to their (small) discretisation error at 40 steps.
    gm = mixture()
    score2d = gm.score_fn(sde)

    def score(x, t):
        return score2d(x.reshape(x.shape[0], 2), t).reshape(x.shape)

    x_T = sde.prior_sample((32, 2, 1), generator=torch.Generator().manual_seed(0), dtype=F64)
    ref = pf_ode_dopri5(sde, score, x_T, steps=1, rtol=1e-7, atol=1e-7)
    for sampler in (dpm_solver_3m, pf_ode_heun):
        x = sampler(sde, score, x_T, steps=40)
        assert x.shape == x_T.shape
        assert (x - ref).norm(dim=1).max().item() < 2e-2
    x = euler_maruyama(sde, score, x_T, steps=20, generator=torch.Generator().manual_seed(0))
    assert x.shape == x_T.shape and bool(torch.isfinite(x).all())


def test_same_generator_seed_gives_the_same_samples():
    sde, gm = VPSDE(), mixture()
    x_T = sde.prior_sample((16, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    for sampler in (euler_maruyama, predictor_corrector, edm_stochastic):
        opts = dict(s_churn=10.0) if sampler is edm_stochastic else {}
        a = sampler(sde, gm.score_fn(sde), x_T, steps=10, generator=torch.Generator().manual_seed(3), **opts)
        b = sampler(sde, gm.score_fn(sde), x_T, steps=10, generator=torch.Generator().manual_seed(3), **opts)
        c = sampler(sde, gm.score_fn(sde), x_T, steps=10, generator=torch.Generator().manual_seed(4), **opts)
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_exponential_adams_with_data_prediction_and_no_corrector_is_dpm_solver_pp():
    # The same method written two ways (Lagrange weights vs divided differences) agrees to rounding.
    sde, gm = VPSDE(), mixture()
    x_T = sde.prior_sample((64, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    for k, reference in [(2, dpm_solver_2m), (3, dpm_solver_3m)]:
        a = exponential_adams(sde, gm.score_fn(sde), x_T, steps=12, order=k, prediction="data", corrector=False,
                              schedule=log_snr_grid)
        b = reference(sde, gm.score_fn(sde), x_T, steps=12)
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_explicit_time_grid_equals_the_schedule_function():
    sde, gm = VPSDE(), mixture()
    x_T = sde.prior_sample((16, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    a = dpm_solver_3m(sde, gm.score_fn(sde), x_T, steps=7, schedule=karras_grid)
    b = dpm_solver_3m(sde, gm.score_fn(sde), x_T, steps=7, schedule=karras_grid(sde, 7, dtype=F64))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


ALL = [euler_maruyama, torchsde_sampler, predictor_corrector, pf_ode_euler, pf_ode_heun, pf_ode_dopri5, ddim,
       dpm_solver_2m, dpm_solver_3m, edm_stochastic, exponential_adams, dpm_solver_sde]


@pytest.mark.parametrize("sampler", ALL, ids=lambda f: f.__name__)
def test_bad_arguments_raise_clear_errors(sampler):
    sde, gm = VPSDE(), mixture()
    score = gm.score_fn(sde)
    x_T = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        sampler(sde, score, x_T, steps=0)
    with pytest.raises(ValueError, match="steps"):
        sampler(sde, score, x_T, steps=2.5)
    with pytest.raises(ValueError, match=r"x_T must be a Tensor of shape \(B, ...\)"):
        sampler(sde, score, torch.tensor(1.0), steps=3)
    with pytest.raises(TypeError, match="x_T must be a floating-point"):
        sampler(sde, score, torch.zeros(4, 2, dtype=torch.int64), steps=3)
    with pytest.raises(TypeError, match="score must be a callable"):
        sampler(sde, "score", x_T, steps=3)
    with pytest.raises(TypeError, match="sde must be"):
        sampler(None, score, x_T, steps=3)
    with pytest.raises(TypeError, match="generator"):
        sampler(sde, score, x_T, steps=3, generator=1)
    increasing = torch.linspace(sde.t_min, 1.0, 4, dtype=F64)
    with pytest.raises(ValueError, match="strictly decreasing"):
        sampler(sde, score, x_T, steps=3, schedule=increasing)
    with pytest.raises(ValueError, match=r"shape \(steps \+ 1,\) = \(4,\)"):
        sampler(sde, score, x_T, steps=3, schedule=uniform_grid(sde, 5))
    with pytest.raises(ValueError, match=r"\(0, T\]"):
        sampler(sde, score, x_T, steps=3, schedule=torch.tensor([1.0, 0.5, 0.2, 0.0], dtype=F64))


def test_sampler_specific_bad_arguments():
    sde, gm = VPSDE(), mixture()
    score, x_T = gm.score_fn(sde), torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match="eta"):
        ddim(sde, score, x_T, steps=3, eta=-1.0)
    with pytest.raises(ValueError, match="method"):
        torchsde_sampler(sde, score, x_T, steps=3, method="rk4")
    with pytest.raises(ValueError, match="uniform in t"):
        torchsde_sampler(sde, score, x_T, steps=3, schedule=log_snr_grid)
    with pytest.raises(ValueError, match="corrector_steps"):
        predictor_corrector(sde, score, x_T, steps=3, corrector_steps=-1)
    with pytest.raises(ValueError, match="snr"):
        predictor_corrector(sde, score, x_T, steps=3, snr=-0.1)
    with pytest.raises(ValueError, match="s_churn"):
        edm_stochastic(sde, score, x_T, steps=3, s_churn=-1.0)
    bm = torchsde.BrownianInterval(t0=0.0, t1=1.0, size=(3, 2), dtype=F64)
    with pytest.raises(ValueError, match="brownian must have 8 elements"):
        euler_maruyama(sde, score, x_T, steps=3, brownian=bm)
    with pytest.raises(ValueError, match="either generator or brownian"):
        euler_maruyama(sde, score, x_T, steps=3, brownian=bm, generator=torch.Generator())
    with pytest.raises(ValueError, match="order"):
        exponential_adams(sde, score, x_T, steps=3, order=5)
    with pytest.raises(ValueError, match="prediction"):
        exponential_adams(sde, score, x_T, steps=3, prediction="velocity")
    with pytest.raises(ValueError, match="order"):
        dpm_solver_sde(sde, score, x_T, steps=3, order=4)
    with pytest.raises(ValueError, match="rtol"):
        pf_ode_dopri5(sde, score, x_T, steps=1, rtol=0.0)


def test_memoised_grids_follow_changes_of_the_sde_parameters():
    # Grids from schedule functions are cached per SDE object and parameters: changing β_max must
    # change the result (and match a fresh SDE with that β_max).
    gm = mixture()
    sde = VPSDE()
    x_T = sde.prior_sample((16, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    before = dpm_solver_3m(sde, gm.score_fn(sde), x_T, steps=6)
    sde.beta_max = 10.0
    after = dpm_solver_3m(sde, gm.score_fn(sde), x_T, steps=6)
    fresh = dpm_solver_3m(VPSDE(beta_max=10.0), gm.score_fn(VPSDE(beta_max=10.0)), x_T, steps=6)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, fresh, rtol=0, atol=0)


def test_sde_dpm_solver_first_order_is_ddim_with_eta_one():
    # k = 1 is the exact exponential step of the reverse SDE, which is DDIM with η = 1 (same noise draws).
    sde, gm = VPSDE(), mixture()
    x_T = sde.prior_sample((64, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    a = dpm_solver_sde(sde, gm.score_fn(sde), x_T, steps=9, order=1, generator=torch.Generator().manual_seed(5))
    b = ddim(sde, gm.score_fn(sde), x_T, steps=9, eta=1.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_sde_dpm_solver_takes_first_order_steps_when_they_are_long():
    # 10 log-SNR steps under VP are h ≈ 0.96 > max_multistep_h = 0.7: every step is the k = 1 step.
    sde, gm = VPSDE(), mixture()
    x_T = sde.prior_sample((64, 2), generator=torch.Generator().manual_seed(0), dtype=F64)
    a = dpm_solver_sde(sde, gm.score_fn(sde), x_T, steps=10, generator=torch.Generator().manual_seed(5))
    b = dpm_solver_sde(sde, gm.score_fn(sde), x_T, steps=10, order=1, generator=torch.Generator().manual_seed(5))
    c = dpm_solver_sde(sde, gm.score_fn(sde), x_T, steps=10, max_multistep_h=math.inf,
                       generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError, match="max_multistep_h"):
        dpm_solver_sde(sde, gm.score_fn(sde), x_T, steps=10, max_multistep_h=0.0)
