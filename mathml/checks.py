"""The one home of mathml's argument checks.

Every public entry point of the library, the recipes and the scripts validates its arguments with
these helpers, so an error always names the argument, what was expected and what was given:
``from mathml.checks import check_positive_int``. Add a generic check here rather than writing one
by hand in a module.
"""

from __future__ import annotations

import math

import torch


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(value: object, name: str) -> int:
    """``value`` is an int >= 1; returns it."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def check_nonnegative_int(value: object, name: str) -> int:
    """``value`` is an int >= 0; returns it."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return value


def check_positive(value: object, name: str) -> float:
    """``value`` is a finite real number > 0; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_nonnegative(value: object, name: str) -> float:
    """``value`` is a finite real number >= 0; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_in_open_interval(value: object, name: str, low: float, high: float) -> float:
    """``value`` is a real number with ``low < value < high``; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < high:
        raise ValueError(f"{name} must be a number in the open interval ({low}, {high}), got {value!r}")
    return float(value)


def check_choice(value: object, name: str, choices: tuple) -> object:
    """``value`` is one of ``choices``; returns it."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_generator(generator: object, name: str = "generator") -> None:
    """``generator`` is a ``torch.Generator`` or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")


def check_tensor(x: object, name: str, *, min_dim: int = 0, shape_doc: str = "") -> torch.Tensor:
    """``x`` is a floating-point Tensor with at least ``min_dim`` dimensions; returns it."""
    want = f" of shape {shape_doc}" if shape_doc else ""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a Tensor{want}, got {type(x).__name__}")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must be a Tensor{want} (at least {min_dim} dims), got shape {tuple(x.shape)}")
    return x


def inverse_softplus(y: float) -> float:
    """x with softplus(x) = log(1 + eˣ) = y, for y > 0: x = y + log(1 − e^{−y}) (stable for large y)."""
    y = check_positive(y, "y")
    return y + math.log(-math.expm1(-y))


def check_int_at_least(value: object, name: str, low: int) -> int:
    """``value`` is an int >= ``low``; returns it."""
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value
