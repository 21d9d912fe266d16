"""VAEModule pieces that need no Trainer: KL warm-up schedule and argument checks."""

from functools import partial
from unittest.mock import PropertyMock, patch

import pytest
import torch

from mathml.distributions import StandardNormalPrior
from mathml.layers import BernoulliLikelihood, MLPDecoder, MLPEncoder
from mathml.objectives import ELBO, IWAE
from mathml_recipes.steps import log_step_terms
from mathml_recipes.vae import VAEModule


class _SpyELBO(ELBO):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.betas = []

    def forward(self, *args, beta=None, **kw):
        self.betas.append(beta)
        return super().forward(*args, beta=beta, **kw)


def _parts():
    return MLPEncoder([1, 4, 4], 2, hidden=[8]), MLPDecoder(2, [1, 4, 4], BernoulliLikelihood(), hidden=[8]), StandardNormalPrior(2)


def test_kl_warmup_ramps_beta_linearly_to_its_value():
    # β_t = β · min(1, t / T) (Sønderby et al. 2016): 0 at t=0, β/2 at T/2, β from T on.
    objective = _SpyELBO(beta=2.0)
    module = VAEModule(*_parts(), objective, optimizer=partial(torch.optim.Adam), kl_warmup_steps=4)
    x = torch.rand(3, 1, 4, 4).round()
    for step in (0, 2, 4, 8):
        with patch.object(VAEModule, "global_step", new_callable=PropertyMock, return_value=step):
            module._terms(x, torch.Generator().manual_seed(0))
    assert objective.betas == [0.0, 1.0, 2.0, 2.0]


def test_warmup_needs_the_elbo_and_eval_k_is_positive():
    with pytest.raises(ValueError, match="kl_warmup_steps"):
        VAEModule(*_parts(), IWAE(k=2), optimizer=partial(torch.optim.Adam), kl_warmup_steps=3)
    with pytest.raises(ValueError, match="eval_k"):
        VAEModule(*_parts(), ELBO(), optimizer=partial(torch.optim.Adam), eval_k=0)


class _ListLogger:
    def __init__(self):
        self.calls = []

    def log_metrics(self, metrics, step):
        self.calls.append((step, metrics))


def test_step_values_go_to_every_logger_and_a_non_finite_loss_stops_training():
    from types import SimpleNamespace

    module = VAEModule(*_parts(), ELBO(), optimizer=partial(torch.optim.Adam))
    loggers = [_ListLogger(), _ListLogger()]
    trainer = SimpleNamespace(loggers=loggers, progress_bar_callback=None, current_epoch=3, global_step=20)
    terms = {"loss": torch.tensor([1.0, 3.0]), "kl": torch.tensor([0.5, 0.5])}
    means = module.term_means["train"].update(terms)  # names sorted: kl, loss
    with patch.object(VAEModule, "trainer", new_callable=PropertyMock, return_value=trainer), \
            patch.object(VAEModule, "loggers", new_callable=PropertyMock, return_value=loggers), \
            patch.object(VAEModule, "current_epoch", new_callable=PropertyMock, return_value=3), \
            patch.object(VAEModule, "global_step", new_callable=PropertyMock, return_value=20):
        log_step_terms(module, module.term_means["train"], means, "lower the learning rate")
        assert [c for lg in loggers for c in lg.calls] == 2 * [(20, {"train/kl_step": 0.5, "train/loss_step": 2.0,
                                                                     "epoch": 3})]
        with pytest.raises(FloatingPointError, match="non-finite training loss .* at step 20"):
            log_step_terms(module, module.term_means["train"], torch.tensor([0.5, float("nan")]), "lower the lr")
