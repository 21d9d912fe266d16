"""A time- and class-conditioned U-Net for image score models: net(x, t, y) -> shape of x.

The architecture is the U-Net of Ronneberger et al. 2015 ("U-Net: Convolutional Networks for
Biomedical Image Segmentation", §2) in the form used for diffusion by Ho et al. 2020 ("Denoising
Diffusion Probabilistic Models", App. B, from PixelCNN++/Wide ResNet) and Song et al. 2021
("Score-Based Generative Modeling through SDEs", App. H, NCSN++/DDPM++):

    e = MLP(γ(t)) + E_y[y]                               γ: a time embedding; E_y: class embedding
    residual block:  h = Conv(SiLU(GN(x)));  h = h + W e;  h = Conv(Dropout(SiLU(GN(h))));  x' = skip(x) + h
    attention block: x' = x + W_o softmax(Qᵀ K / √d) V,  Q, K, V = W_{q,k,v} GN(x)   (Vaswani et al. 2017, eq. 1)

with GroupNorm (Wu & He 2018, eq. 1 with groups of channels), SiLU (Elfwing et al. 2018), the
time embedding added inside every residual block (Ho et al. 2020, App. B), and self-attention at
chosen resolutions (16×16 in Ho et al.). The encoder runs ``num_res_blocks`` blocks per level with
``base_channels × channel_multipliers[level]`` channels and halves the resolution between levels
(3×3 convolution of stride 2: 28 → 14 → 7, 32 → 16 → 8, 7 → 4); the decoder mirrors it with
``num_res_blocks + 1`` blocks per level over the concatenated skip connections and upsamples to
the size of the matching skip (nearest neighbour + 3×3 convolution), so odd sizes such as 7×7
need no padding.

Class conditioning: with ``num_classes = K`` the embedding table has K + 1 rows; row K is the
"null" label ∅ of classifier-free guidance (Ho & Salimans 2022, §3.2), used when ``y`` is None.
What the network predicts (ε, x₀, v, EDM's F) is decided by the parametrisation adapter around it
(``mathml.objectives``); ``zero_init_output`` starts it at F ≡ 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from mathml.checks import check_nonnegative, check_nonnegative_int, check_positive_int, check_tensor

from .time_embedding import GaussianFourierEmbedding

__all__ = ["UNet"]


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm (Wu & He 2018) with the largest group count ≤ ``groups`` that divides ``channels``."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in, groups), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out, groups), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as its skip path (Ho et al. 2020's init)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(e))[:, :, None, None]  # (B, C) per-channel shift over H, W
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class _Attention(nn.Module):
    """Multi-head self-attention over the H·W positions (Vaswani et al. 2017, eq. 1), residual."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"num_heads={heads} must divide the channels of every attention level, got {channels}")
        self.heads = heads
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        return x + self.out(h.transpose(-1, -2).reshape(B, C, H, W))


class _Down(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)  # ⌈n/2⌉: 28→14→7→4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Up(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


class UNet(nn.Module):
    """U-Net F_θ(x, t, y) for images (see the module docstring).

    Args:
        data_shape: ``[C, H, W]`` of one image (``${data.data_shape}``); C sets the input/output
            channels, H, W the resolutions at which ``attention_resolutions`` are looked up.
        base_channels: channels of the first level (128 in Ho et al. 2020's CIFAR-10 model).
        channel_multipliers: one per level; level i has ``base_channels * m_i`` channels and
            resolution ⌈H / 2^i⌉ (e.g. ``[1, 2, 2, 2]`` for 32×32 in Ho et al.).
        num_res_blocks: residual blocks per level in the encoder (the decoder has one more).
        attention_resolutions: spatial sizes (height) at which self-attention follows each block,
            e.g. ``[16]`` for 32×32 or ``[7]`` for 28×28; each must be one of the levels' sizes.
        dropout: dropout rate inside residual blocks (0.1 in Ho et al. for CIFAR-10).
        num_classes: K for class-conditional models (labels 0..K−1, and K = ∅ "no label"), or None.
        num_heads: attention heads (must divide the channels of every attention level).
        norm_groups: GroupNorm groups (32 in Ho et al.; reduced to gcd(groups, channels)).
        time_embedding: module ``t: (B,) -> (B, E)`` with attribute ``dim = E``; default
            ``GaussianFourierEmbedding(base_channels, scale=16)`` (Song et al. 2021, App. H.1),
            which suits t ∈ [0, 1] (VP, VE) and EDM's c_noise = ¼ ln σ alike.
        zero_init_output: start with F ≡ 0.

    Shapes: ``x: (B, C, H', W')`` (any H', W' ≥ 1; the attention levels are fixed by
    ``data_shape``), ``t: (B,)``, ``y: (B,)`` integer labels in [0, K] or None → ``(B, C, H', W')``.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        base_channels: int = 64,
        channel_multipliers: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (),
        dropout: float = 0.0,
        num_classes: int | None = None,
        num_heads: int = 1,
        norm_groups: int = 32,
        time_embedding: nn.Module | None = None,
        zero_init_output: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(data_shape, int) or len(data_shape) != 3:
            raise ValueError(f"data_shape must be [C, H, W] (an image), got {data_shape!r}")
        self.data_shape = tuple(check_positive_int(int(d), "data_shape entries") for d in data_shape)
        ch = check_positive_int(base_channels, "base_channels")
        if isinstance(channel_multipliers, int) or len(channel_multipliers) == 0:
            raise ValueError(f"channel_multipliers must be a non-empty list of ints, got {channel_multipliers!r}")
        mults = [check_positive_int(int(m), "channel_multipliers entries") for m in channel_multipliers]
        check_positive_int(num_res_blocks, "num_res_blocks")
        dropout = check_nonnegative(dropout, "dropout")
        if dropout >= 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.num_classes = None if num_classes is None else check_positive_int(num_classes, "num_classes")
        check_positive_int(num_heads, "num_heads")
        check_positive_int(norm_groups, "norm_groups")
        C, H = self.data_shape[0], self.data_shape[1]
        sizes = [H]
        for _ in mults[1:]:
            sizes.append((sizes[-1] + 1) // 2)
        attn = {check_nonnegative_int(int(r), "attention_resolutions entries") for r in attention_resolutions}
        if not attn <= set(sizes):
            raise ValueError(f"attention_resolutions must be among this U-Net's level sizes {sizes} (input height "
                             f"{H}, {len(mults)} levels), got {sorted(attn)}")
        self.sizes, self.attention_resolutions = sizes, sorted(attn)

        self.time_embedding = time_embedding if time_embedding is not None else GaussianFourierEmbedding(ch, 16.0)
        emb = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(int(self.time_embedding.dim), emb), nn.SiLU(), nn.Linear(emb, emb))
        self.class_embedding = nn.Embedding(self.num_classes + 1, emb) if self.num_classes else None

        def block(c_in: int, c_out: int, size: int) -> nn.ModuleList:
            parts = [_ResBlock(c_in, c_out, emb, dropout, norm_groups)]
            if size in attn:
                parts.append(_Attention(c_out, num_heads, norm_groups))
            return nn.ModuleList(parts)

        self.conv_in = nn.Conv2d(C, ch, 3, padding=1)
        self.down, skips, c = nn.ModuleList(), [ch], ch
        for i, m in enumerate(mults):
            for _ in range(num_res_blocks):
                self.down.append(block(c, ch * m, sizes[i]))
                c = ch * m
                skips.append(c)
            if i < len(mults) - 1:
                self.down.append(_Down(c))
                skips.append(c)
        self.mid = nn.ModuleList([_ResBlock(c, c, emb, dropout, norm_groups), _Attention(c, num_heads, norm_groups),
                                  _ResBlock(c, c, emb, dropout, norm_groups)])
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            for _ in range(num_res_blocks + 1):
                self.up.append(block(c + skips.pop(), ch * m, sizes[i]))
                c = ch * m
            if i > 0:
                self.up.append(_Up(c))
        self.norm_out, self.conv_out = _norm(c, norm_groups), nn.Conv2d(c, C, 3, padding=1)
        if zero_init_output:
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    @property
    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _embedding(self, t: torch.Tensor, y: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        e = self.time_mlp(self.time_embedding(t.to(dtype)))
        if self.class_embedding is None:
            if y is not None:
                raise ValueError("y was given but this U-Net is unconditional (num_classes=None)")
            return e
        if y is None:  # the null label ∅ (Ho & Salimans 2022, §3.2)
            y = torch.full(t.shape, self.num_classes, dtype=torch.long, device=t.device)
        if y.shape != t.shape or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"y must be an integer tensor of shape (B,) = {tuple(t.shape)} with labels in "
                             f"[0, {self.num_classes}] ({self.num_classes} = no label), got {y.dtype} {tuple(y.shape)}")
        return e + self.class_embedding(y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = check_tensor(x, "x", shape_doc="(B, C, H, W)")
        if x.dim() != 4 or x.shape[1] != self.data_shape[0]:
            raise ValueError(f"x must have shape (B, {self.data_shape[0]}, H, W), got {tuple(x.shape)}")
        t = check_tensor(t, "t", shape_doc="(B,)")
        if t.shape != x.shape[:1]:
            raise ValueError(f"t must have shape (B,) = ({x.shape[0]},), got {tuple(t.shape)}")
        e = self._embedding(t, y, x.dtype)
        h = self.conv_in(x)
        hs = [h]
        for mod in self.down:
            if isinstance(mod, _Down):
                h = mod(h)
            else:
                h = self._run_block(mod, h, e)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, e)), e)
        for mod in self.up:
            if isinstance(mod, _Up):
                h = mod(h, hs[-1].shape[-2:])
            else:
                h = self._run_block(mod, torch.cat([h, hs.pop()], dim=1), e)
        return self.conv_out(F.silu(self.norm_out(h)))

    @staticmethod
    def _run_block(parts: nn.ModuleList, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = parts[0](h, e)
        return parts[1](h) if len(parts) > 1 else h

    def extra_repr(self) -> str:
        return (f"data_shape={list(self.data_shape)}, level_sizes={self.sizes}, "
                f"attention_resolutions={self.attention_resolutions}, num_classes={self.num_classes}")
