"""What a model needs to know about a data set before it sees a batch."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DataInfo:
    """Shape and value grid of one example.

    Attributes:
        data_shape: shape of one example, e.g. ``(1, 8, 8)`` for images ``(C, H, W)`` or ``(2,)``.
        num_levels: number of equally spaced values ``k / (num_levels - 1)``, k = 0..num_levels-1,
            that each pixel takes in [0, 1] (17 for sklearn digits, 256 for 8-bit images, 2 when
            binarised); ``None`` for continuous data.
    """

    data_shape: tuple[int, ...]
    num_levels: int | None

    def binarized(self, binarize: str | None) -> DataInfo:
        """The same set after ``binarize`` (``None`` leaves it unchanged, otherwise 2 levels)."""
        return self if binarize is None else replace(self, num_levels=2)


DIGITS = DataInfo((1, 8, 8), 17)
MNIST_SUBSET = DataInfo((1, 28, 28), 256)
MNIST = DataInfo((1, 28, 28), 256)
FASHION_MNIST = DataInfo((1, 28, 28), 256)
CIFAR10 = DataInfo((3, 32, 32), 256)
TOY_2D = DataInfo((2,), None)
