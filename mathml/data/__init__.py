"""Data sets as tensors: real digits (offline), torchvision image sets, 2-D toy distributions.

Images come as float32 ``(N, C, H, W)`` in [0, 1]; ``DataInfo`` constants (``DIGITS``, ``MNIST``,
...) give each set's ``data_shape`` and ``num_levels`` without reading a file.
"""

from mathml.data.digits import (
    OFFLINE_DIGIT_SETS,
    digits,
    digits_with_labels,
    mnist_subset,
    mnist_subset_with_labels,
    offline_digits_info,
    offline_digits_with_labels,
)
from mathml.data.info import CIFAR10, DIGITS, FASHION_MNIST, MNIST, MNIST_SUBSET, TOY_2D, DataInfo
from mathml.data.loaders import EpochSeededSampler, check_loader_args, seeded_loader
from mathml.data.split import BINARIZE, SPLITS, binarize_images, check_split_args, split_indices
from mathml.data.torchvision_sets import (
    TORCHVISION_NAMES,
    DatasetNotFoundError,
    prepare_torchvision,
    torchvision_images,
    torchvision_info,
)
from mathml.data.toy2d import TOY_2D_SETS, checkerboard, gaussian_mixture_2d, swiss_roll_2d, toy_2d, toy_2d_splits, two_moons

__all__ = [
    "BINARIZE",
    "OFFLINE_DIGIT_SETS",
    "SPLITS",
    "EpochSeededSampler",
    "binarize_images",
    "check_loader_args",
    "check_split_args",
    "offline_digits_info",
    "offline_digits_with_labels",
    "seeded_loader",
    "split_indices",
    "CIFAR10",
    "DIGITS",
    "FASHION_MNIST",
    "MNIST",
    "MNIST_SUBSET",
    "TORCHVISION_NAMES",
    "TOY_2D",
    "TOY_2D_SETS",
    "DataInfo",
    "DatasetNotFoundError",
    "checkerboard",
    "digits",
    "digits_with_labels",
    "gaussian_mixture_2d",
    "mnist_subset",
    "mnist_subset_with_labels",
    "prepare_torchvision",
    "swiss_roll_2d",
    "torchvision_images",
    "torchvision_info",
    "toy_2d",
    "toy_2d_splits",
    "two_moons",
]
