"""Data sets as tensors: real digits (offline), torchvision image sets, 2-D toy distributions."""

from mathml.data.digits import digits, digits_with_labels, mnist_subset, mnist_subset_with_labels
from mathml.data.info import CIFAR10, DIGITS, FASHION_MNIST, MNIST, MNIST_SUBSET, TOY_2D, DataInfo

__all__ = [
    "CIFAR10",
    "DIGITS",
    "FASHION_MNIST",
    "MNIST",
    "MNIST_SUBSET",
    "TOY_2D",
    "DataInfo",
    "digits",
    "digits_with_labels",
    "mnist_subset",
    "mnist_subset_with_labels",
]
