"""FID with a pluggable feature network, the offline feature classifier, and the Inception-Score-style
class entropy: closed forms, a peer oracle (torchmetrics' InceptionScore), monotonicity in added
noise, identical features after save/load, and refusals to compare across feature networks."""

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from mathml.data import digits_with_labels
from mathml.metrics import (
    FeatureClassifier,
    FeatureNetworkMismatch,
    FIDResult,
    cached_feature_classifier,
    classifier_accuracy,
    frechet_distance,
    inception_feature_network,
    inception_score,
    load_feature_classifier,
    save_feature_classifier,
    train_feature_classifier,
)

# A small, quick network: 3 epochs on the 1,258 training digits take ~1 s of CPU.
SMALL = dict(width=16, num_features=32, epochs=3)


@pytest.fixture(scope="module")
def digits():
    x, y = digits_with_labels("train")
    xt, yt = digits_with_labels("test")
    return x, y, xt, yt


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """The offline path end to end: train on the training digits, cache the file, no download."""
    x, y, _, _ = digits
    cache = tmp_path_factory.mktemp("feature_nets")
    net, path = cached_feature_classifier(x, y, dataset="digits", cache_dir=cache, **SMALL)
    return net, path, cache


def test_offline_classifier_is_accurate_and_saved_weights_give_identical_features(trained, digits, tmp_path):
    net, path, cache = trained
    x, y, xt, yt = digits
    assert path.parent == cache and path.name.startswith("digits-") and path.is_file()
    # Held-out accuracy: a chance-level classifier would get ~0.1; 3 epochs reach ~0.92 on these 359 digits.
    assert classifier_accuracy(net, xt, yt) > 0.8
    loaded = load_feature_classifier(path)
    assert loaded.feature_network_id == net.feature_network_id
    assert net.feature_network_id.startswith("digits_cnn_v2:") and len(net.feature_network_id.split(":")[1]) == 12
    with torch.no_grad():
        assert torch.equal(loaded(xt), net(xt))
    assert net(xt[:5]).shape == (5, net.num_features)
    # The cache answers the same call with the same file and weights, without training again.
    again, path2 = cached_feature_classifier(x, y, dataset="digits", cache_dir=cache, **SMALL)
    assert path2 == path and again.feature_network_id == net.feature_network_id
    # Other data or settings get another file.
    other, path3 = cached_feature_classifier(x[:200], y[:200], dataset="digits", cache_dir=cache,
                                             **{**SMALL, "epochs": 1})
    assert path3 != path and other.feature_network_id != net.feature_network_id
    # A file whose weights were altered is refused.
    blob = torch.load(path, weights_only=True)
    blob["state_dict"]["head.bias"] = blob["state_dict"]["head.bias"] + 1.0
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="SHA-256"):
        load_feature_classifier(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_feature_classifier(tmp_path / "missing.pt")


def test_training_is_deterministic_for_a_seed(digits, tmp_path):
    x, y, _, _ = digits
    a = train_feature_classifier(x[:128], y[:128], name="d", width=4, num_features=8, epochs=1, seed=3)
    b = train_feature_classifier(x[:128], y[:128], name="d", width=4, num_features=8, epochs=1, seed=3)
    c = train_feature_classifier(x[:128], y[:128], name="d", width=4, num_features=8, epochs=1, seed=4)
    assert a.feature_network_id == b.feature_network_id != c.feature_network_id
    save_feature_classifier(a, tmp_path / "a.pt", note="x")
    assert load_feature_classifier(tmp_path / "a.pt").feature_network_id == a.feature_network_id


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_added_noise(trained, digits):
    net, _, _ = trained
    xt = digits[2]
    with torch.no_grad():
        scale = torch.cov(net(xt).double().T).trace().item()  # Tr Σ, the natural scale of FID
    same = frechet_distance(xt, xt, net)
    # μ and Σ are identical, so d² = 2 Tr Σ − 2 Tr (Σ²)^{1/2} = 0 up to the rounding of the eigenvalue
    # square roots in float64 (≈ 1e-8 · Tr Σ); 1e-6 · Tr Σ leaves a margin of 100.
    assert abs(same.fid) < 1e-6 * scale
    assert same.feature_network == net.feature_network_id and (same.n_real, same.n_fake) == (359, 359)
    g = torch.Generator().manual_seed(0)
    fids = [frechet_distance(xt, (xt + s * torch.randn(xt.shape, generator=g)).clamp(0, 1), net).fid
            for s in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert fids[0] > 1e3 * abs(same.fid) and all(a < b for a, b in zip(fids, fids[1:])), fids


class _Identity(nn.Module):
    """Features = the flattened input."""

    def __init__(self, d):
        super().__init__()
        self.num_features = d
        self.feature_network_id = f"identity_{d}:0"

    def forward(self, x):
        return x.flatten(1)


def test_fid_matches_the_closed_form_of_the_fitted_gaussians():
    # Oracle: Heusel et al. 2017, eq. 6 on the sample means and covariances (ddof 1) with scipy's sqrtm.
    g = torch.Generator().manual_seed(1)
    a = torch.randn(300, 5, generator=g, dtype=torch.float64)
    b = 0.5 + torch.randn(250, 5, generator=g, dtype=torch.float64) @ torch.tensor(np.diag([1.0, 2, 0.5, 1, 3]))
    ma, mb, ca, cb = a.mean(0).numpy(), b.mean(0).numpy(), np.cov(a.numpy().T), np.cov(b.numpy().T)
    expected = ((ma - mb) ** 2).sum() + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    got = frechet_distance(a, b, _Identity(5), batch_size=64)
    assert got.fid == pytest.approx(expected, rel=1e-9)
    assert (got.n_real, got.n_fake, got.feature_network) == (300, 250, "identity_5:0")


def test_results_from_different_feature_networks_are_not_compared():
    a = FIDResult(3.0, "digits_cnn_v2:aaaaaaaaaaaa", 100, 100)
    b = FIDResult(5.0, "digits_cnn_v2:aaaaaaaaaaaa", 100, 100)
    c = FIDResult(1.0, "inception_v3_pool3:bbbbbbbbbbbb", 100, 100)
    assert a < b and b >= a and a.difference(b) == -2.0
    for compare in (lambda: a < c, lambda: a <= c, lambda: a > c, lambda: a >= c, lambda: a.difference(c)):
        with pytest.raises(FeatureNetworkMismatch, match="not comparable"):
            compare()
    with pytest.raises(TypeError, match="FIDResult"):
        a.difference(3.0)
    assert a.to_dict() == {"fid": 3.0, "feature_network": "digits_cnn_v2:aaaaaaaaaaaa", "n_real": 100, "n_fake": 100}


def test_fid_checks_its_arguments(monkeypatch, tmp_path):
    x = torch.rand(4, 1, 8, 8)
    net = FeatureClassifier(num_features=4, width=2, name="t")
    nameless = nn.Flatten()
    nameless.num_features = 64
    with pytest.raises(ValueError, match="feature_network_id"):
        frechet_distance(x, x, nameless)
    assert frechet_distance(x, x, nameless, feature_network_id="flat").feature_network == "flat"
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(x[:1], x, net)
    with pytest.raises(ValueError, match="same image shape"):
        frechet_distance(x, torch.rand(4, 1, 6, 6), net)
    with pytest.raises(TypeError, match="num_features"):
        frechet_distance(x, x, nn.Flatten(), feature_network_id="flat")
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, H, W\)"):
        net(torch.rand(4, 3, 8, 8))
    with pytest.raises(ValueError, match="name"):
        FeatureClassifier(name="a:b")
    # Inception weights cannot be downloaded: a missing path or file says what to do.
    monkeypatch.delenv("MATHML_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="MATHML_INCEPTION_WEIGHTS"):
        inception_feature_network()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        inception_feature_network(tmp_path / "inception.pth")


def test_inception_score_closed_forms():
    k = 7
    one_hot = torch.eye(k, dtype=torch.float64).repeat(30, 1)  # confident, every class equally often
    assert inception_score(one_hot)[0].item() == pytest.approx(k, rel=1e-12)
    mean, std = inception_score(one_hot, splits=3)  # each split holds 10 of each class
    assert mean.item() == pytest.approx(k, rel=1e-12) and std.item() == pytest.approx(0.0, abs=1e-12)
    p = torch.softmax(torch.randn(k, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 0)
    assert inception_score(p.expand(50, k))[0].item() == pytest.approx(1.0, abs=1e-12)  # constant p(y|x)
    # half the images one class, half another, all confident: exp(H(y)) = 2
    two = torch.eye(k, dtype=torch.float64)[torch.tensor([0, 3] * 20)]
    assert inception_score(two)[0].item() == pytest.approx(2.0, rel=1e-12)
    with pytest.raises(ValueError, match="rows summing to 1"):
        inception_score(torch.rand(5, 3) + 1)
    with pytest.raises(ValueError, match="fewer than splits"):
        inception_score(one_hot[:2], splits=3)


@pytest.mark.filterwarnings("ignore:std.*degrees of freedom is <= 0:UserWarning")
@pytest.mark.filterwarnings("ignore:Metric .InceptionScore. will save all extracted features:UserWarning")
def test_inception_score_matches_torchmetrics():
    # Peer oracle: torchmetrics' InceptionScore with a feature network returning fixed logits, one split.
    from torchmetrics.image.inception import InceptionScore

    logits = 3 * torch.randn(200, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    class Logits(nn.Module):
        def forward(self, idx):
            return logits[idx]

    metric = InceptionScore(feature=Logits(), splits=1)
    metric.update(torch.arange(200))
    expected = metric.compute()[0].item()
    assert inception_score(logits.softmax(-1))[0].item() == pytest.approx(expected, rel=1e-10)
