"""Networks: MLP, encoders q(z|x) and decoders p(x|z) that return torch distributions,
and the likelihood heads that turn decoder outputs into distributions."""

from .decoders import ConvDecoder, MLPDecoder
from .energy import EnergyMLP
from .encoders import ConvEncoder, MLPEncoder
from .likelihoods import BernoulliLikelihood, DiscretizedGaussianLikelihood, GaussianLikelihood
from .mlp import MLP
from .score_mlp import ScoreMLP
from .time_embedding import GaussianFourierEmbedding, SinusoidalEmbedding
from .unet import UNet

__all__ = [
    "MLP",
    "ScoreMLP",
    "UNet",
    "EnergyMLP",
    "GaussianFourierEmbedding",
    "SinusoidalEmbedding",
    "MLPEncoder",
    "ConvEncoder",
    "MLPDecoder",
    "ConvDecoder",
    "BernoulliLikelihood",
    "GaussianLikelihood",
    "DiscretizedGaussianLikelihood",
]
