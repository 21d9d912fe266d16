"""Metrics: negative log-likelihood in nats and bits per dimension."""

from .nll import bits_per_dim, dequantized_bits_per_dim

__all__ = ["bits_per_dim", "dequantized_bits_per_dim"]
