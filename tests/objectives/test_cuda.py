"""The objectives, sampling and likelihood heads on CUDA: device and dtype follow the inputs, and a
CUDA generator drives the draws."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Categorical, Independent, MultivariateNormal, Normal

from mathml.distributions.sampling import rsample, sample
from mathml.layers import DiscretizedGaussianLikelihood, GaussianLikelihood
from mathml.objectives import ELBO, IWAE, importance_sampled_log_likelihood, kl_divergence

pytestmark = pytest.mark.cuda


def _parts(dtype):
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.randint(0, 17, (6, 1, 4, 4), device=dev, generator=g).to(dtype) / 16
    mu = torch.randn(6, 3, device=dev, dtype=dtype, generator=g)
    q = Independent(Normal(mu, torch.full_like(mu, 0.5)), 1)
    W = torch.randn(2 * 16, 3, device=dev, dtype=dtype, generator=g)
    head = DiscretizedGaussianLikelihood(17).to(dev)
    decoder = lambda z: head((z @ W.T).reshape(*z.shape[:-1], 2, 1, 4, 4), torch.Size([1, 4, 4]))  # noqa: E731
    prior = Independent(Normal(torch.zeros(3, device=dev, dtype=dtype), torch.ones(3, device=dev, dtype=dtype)), 1)
    return x, q, decoder, prior


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_objectives_run_on_cuda_with_a_cuda_generator(dtype):
    x, q, decoder, prior = _parts(dtype)
    g = lambda: torch.Generator(device="cuda").manual_seed(1)  # noqa: E731
    for terms in (ELBO(free_bits=0.1)(x, q, decoder, prior, generator=g()), IWAE(4)(x, q, decoder, prior, generator=g())):
        for v in terms.values():
            assert v.device.type == "cuda" and v.dtype == dtype and v.shape == (6,) and torch.isfinite(v).all()
    a = importance_sampled_log_likelihood(x, q, decoder, prior, k=300, chunk=128, generator=g())
    b = importance_sampled_log_likelihood(x, q, decoder, prior, k=300, chunk=128, generator=g())
    assert a.device.type == "cuda" and torch.equal(a, b)
    # CUDA result agrees with the same computation on the CPU (same parameters, exact KL).
    cpu_q = Independent(Normal(q.base_dist.loc.cpu(), q.base_dist.scale.cpu()), 1)
    cpu_p = Independent(Normal(prior.base_dist.loc.cpu(), prior.base_dist.scale.cpu()), 1)
    torch.testing.assert_close(kl_divergence(q, prior).cpu(), kl_divergence(cpu_q, cpu_p))


def test_sampling_and_heads_on_cuda():
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(2)
    S = torch.tensor([[2.0, 0.3], [0.3, 1.0]], device=dev)
    assert rsample(MultivariateNormal(torch.zeros(2, device=dev), S), (5,), generator=g).device.type == "cuda"
    assert sample(Categorical(torch.ones(3, 4, device=dev)), (5,), generator=g).shape == (5, 3)
    head = GaussianLikelihood(scale=0.5, learn_scale=True).to(dev)
    dist = head(torch.zeros(2, 1, 3, device=dev, dtype=torch.float64), torch.Size([3]))
    assert dist.base_dist.scale.device.type == "cuda" and dist.base_dist.scale.dtype == torch.float64
