"""U-Net: output shape over a sweep of sizes and architectures, dependence on t and y (and y=None
as the null label), per-sample independence, and argument errors."""

import pytest
import torch
from torch import nn

from mathml.layers import UNet


def _randomise_zero_inits(net: nn.Module) -> nn.Module:
    """Re-draw the zero-initialised output convolutions, so every path of the network is live."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and m.weight.abs().max() == 0:
            m.reset_parameters()
    return net


SWEEP = [  # (data_shape, channel_multipliers, num_res_blocks, attention_resolutions, num_classes)
    ((1, 8, 8), (1, 2), 1, (4,), None),
    ((1, 8, 8), (1, 2, 2), 2, (8, 2), 10),
    ((1, 28, 28), (1, 2, 2), 1, (7,), 10),
    ((1, 28, 28), (1, 2, 4), 1, (), None),
    ((1, 28, 28), (1, 1, 2, 2), 1, (14, 4), 3),  # 28 → 14 → 7 → 4 and back
    ((3, 32, 32), (1, 2, 2, 2), 1, (16,), 10),
    ((3, 32, 32), (1, 2), 2, (16,), None),
]


@pytest.mark.parametrize("shape,mults,blocks,attn,classes", SWEEP)
def test_output_has_the_input_shape_over_a_sweep_of_sizes(shape, mults, blocks, attn, classes):
    torch.manual_seed(0)
    net = _randomise_zero_inits(UNet(list(shape), base_channels=8, channel_multipliers=list(mults),
                                     num_res_blocks=blocks, attention_resolutions=list(attn), num_classes=classes,
                                     num_heads=2, norm_groups=4, dropout=0.1))
    x, t = torch.randn(3, *shape), torch.rand(3)
    y = torch.tensor([0, classes, 1]) if classes else None
    out = net(x, t, y)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # the number of attention blocks is what the resolutions ask for: per matching level,
    # num_res_blocks in the encoder and num_res_blocks + 1 in the decoder, plus one in the middle
    n_attn = sum(type(m).__name__ == "_Attention" for m in net.modules())
    sizes = [shape[1]]
    for _ in mults[1:]:
        sizes.append((sizes[-1] + 1) // 2)
    assert n_attn == 1 + sum((2 * blocks + 1) for s in sizes if s in attn)


def _net(**kw):
    torch.manual_seed(0)
    return _randomise_zero_inits(UNet([1, 28, 28], base_channels=8, channel_multipliers=[1, 2, 2],
                                      attention_resolutions=[7], num_res_blocks=1, norm_groups=4, **kw)).double()


def test_output_depends_on_t_and_on_the_label_and_none_is_the_null_label():
    net = _net(num_classes=10).eval()
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    t = torch.full((2,), 0.3, dtype=torch.float64)
    y = torch.tensor([3, 3])
    base = net(x, t, y)
    assert (net(x, t + 0.2, y) - base).abs().max() > 1e-3  # time conditioning
    assert (net(x, t, torch.tensor([4, 4])) - base).abs().max() > 1e-3  # class conditioning
    # y = None is the null label K = 10 (the unconditional score of classifier-free guidance)
    assert torch.equal(net(x, t, None), net(x, t, torch.tensor([10, 10])))
    assert (net(x, t, None) - base).abs().max() > 1e-3


def test_each_sample_depends_only_on_its_own_input():
    # GroupNorm and attention act within a sample: row i of a batch equals the network on row i alone.
    torch.manual_seed(0)
    net = _randomise_zero_inits(UNet([1, 14, 14], base_channels=8, channel_multipliers=[1, 2, 2], num_res_blocks=1,
                                     attention_resolutions=[7, 4], norm_groups=4, num_classes=10)).eval()
    x, t = torch.randn(3, 1, 14, 14), torch.rand(3)
    y = torch.tensor([0, 10, 9])
    single = torch.cat([net(x[i : i + 1], t[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(net(x, t, y), single)


def test_zero_initialised_output_is_zero_and_the_parameter_count_is_reported():
    net = UNet([1, 8, 8], base_channels=8, channel_multipliers=[1, 2], norm_groups=4)
    assert net(torch.randn(2, 1, 8, 8), torch.rand(2)).abs().max() == 0
    assert net.num_parameters == sum(p.numel() for p in net.parameters())
    bigger = UNet([1, 8, 8], base_channels=16, channel_multipliers=[1, 2], norm_groups=4)
    assert bigger.num_parameters > net.num_parameters


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"attention_resolutions must be among this U-Net's level sizes \[28, 14, 7\]"):
        UNet([1, 28, 28], channel_multipliers=[1, 2, 2], attention_resolutions=[16])
    with pytest.raises(ValueError, match="data_shape must be"):
        UNet([784])
    with pytest.raises(ValueError, match="num_heads=3 must divide"):
        UNet([1, 8, 8], base_channels=8, attention_resolutions=[8], num_heads=3)
    with pytest.raises(ValueError, match="dropout must lie in"):
        UNet([1, 8, 8], dropout=1.0)
    net = UNet([1, 8, 8], base_channels=8, channel_multipliers=[1, 2], norm_groups=4)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, H, W\)"):
        net(torch.randn(2, 3, 8, 8), torch.rand(2))
    with pytest.raises(ValueError, match=r"t must have shape \(B,\)"):
        net(torch.randn(2, 1, 8, 8), torch.rand(3))
    with pytest.raises(ValueError, match="unconditional"):
        net(torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([0, 1]))
    cond = UNet([1, 8, 8], base_channels=8, channel_multipliers=[1, 2], norm_groups=4, num_classes=10)
    with pytest.raises(ValueError, match="y must be an integer tensor"):
        cond(torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([0.5, 1.0]))
