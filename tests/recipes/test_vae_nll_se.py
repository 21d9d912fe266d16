"""VAEModule's test epoch logs the Monte-Carlo standard error of its importance-sampled NLL."""

from functools import partial
from unittest.mock import patch

import torch

from mathml.distributions import StandardNormalPrior
from mathml.layers import BernoulliLikelihood, MLPDecoder, MLPEncoder
from mathml.objectives import ELBO, importance_sampled_log_likelihood
from mathml_recipes.vae import VAEModule


def test_test_epoch_logs_the_standard_error_of_the_mean_nll():
    torch.manual_seed(0)
    module = VAEModule(MLPEncoder([1, 4, 4], 2, hidden=[8]), MLPDecoder(2, [1, 4, 4], BernoulliLikelihood(), hidden=[8]),
                       StandardNormalPrior(2), ELBO(), optimizer=partial(torch.optim.Adam), eval_k=20, eval_chunk=7)
    batches = [torch.rand(3, 1, 4, 4).round(), torch.rand(5, 1, 4, 4).round()]
    logged = {}
    with patch.object(VAEModule, "log", lambda self, name, value, **kw: logged.__setitem__(name, value)), \
            torch.no_grad():
        for i, x in enumerate(batches):
            module.test_step((x,), i)
        module.on_test_epoch_end()
    # The same per-batch generators reproduce each batch's estimates and their delta-method SEs; the
    # SE of the mean of N independent estimates is sqrt(Σ_i SE_i²) / N.
    nll, se2 = [], []
    with torch.no_grad():
        for i, x in enumerate(batches):
            log_px, se = importance_sampled_log_likelihood(
                x, module.encoder(x), module.decoder, module.prior(), k=20, chunk=7, return_stderr=True,
                generator=module._generator(10_000 + i))
            nll.append(-log_px)
            se2.append(se.pow(2))
    nll, se2 = torch.cat(nll), torch.cat(se2)
    torch.testing.assert_close(logged["test/nll_nats"], nll.mean().float())
    torch.testing.assert_close(logged["test/nll_nats_se"], (se2.sum().sqrt() / 8).float())
    assert 0 < logged["test/nll_nats_se"] < 1
