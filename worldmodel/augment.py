"""Image augmentation during updates: random shifts (pad, then crop back), as DrQ and TD-MPC2 do.

    x = preprocess(frames)                      # (B, S, 3, H, W) float
    online, target = two_views(x, pad=4)        # each sequence shifted by its own (dy, dx), per view

One shift per sequence, the same for all its frames: the encoder stacks `history` frames and the
dynamics relate consecutive latents, so a shift that jumped from frame to frame would be motion that
never happened. The online and the target encoder see independently shifted views of the same
frames (two views, as DrQ's target averaging and CURL's query/key pairs), so the contrastive and
consistency targets reward latents that do not move with a few pixels of shift; the masked
objective predicts the pixels of the online view it was shown.

Appearance augmentation (`appearance=jitter|conv|remap`), for robustness to colour shifts (DMC-GB's
color_hard, `envs/dmc_colors.py`), is applied SVEA-style to the online view only: the online encoder sees recoloured
frames while the target encoder and the masked objective's pixel targets stay clean, so the
consistency, contrastive and masked terms all ask for latents that ignore the colours rather than
learning to predict noise. Also one draw per sequence, the same for all its frames.

    online = appearance(online, "jitter")       # (B, S, 3, H, W) float in [-0.5, 0.5], same shape

- `jitter`: a hue rotation by U(-180°, 180°) about the grey axis, channel gains U(0.6, 1.4), a
  contrast factor U(0.6, 1.4) about the frame's mean and a brightness offset U(-0.2, 0.2), clipped.
- `conv`: a random 3x3 convolution, 3 -> 3 channels with N(0, 1/27) weights (random convolution,
  Lee et al. 2020, as SVEA uses), squashed back into range by a sigmoid; it changes textures too.
- `remap`: a random smooth map of colour space onto itself (random sine features of each pixel's
  colour, mixed and squashed): unlike the two above, which move every colour of the frame the same
  way, distinct colours go to nearly independent new ones, as the hard colour modes move the sky, floor
  and body each its own way (DMC-GB's color_hard by independent offsets, our color_all_hard anywhere); nearby colours (a body's shading) stay nearby.

`appearance_share` < 1 recolours only that share of each batch's sequences (drawn at random) and
leaves the rest clean, as SVEA trains on clean and augmented data together: the heads and the dynamics then also
learn from the clean latents the planner reads at acting time, which an online view that is always
recoloured never shows them.

    online = appearance(online, "conv", share=0.5)   # half the sequences (at random) recoloured, half clean
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`x (B, S, C, H, W)` float, each sequence shifted by a random integer `(dy, dx)` in
    `[-pad, pad]`: edge-replicate padding by `pad`, then a crop back to `(H, W)`. Same shape and
    memory layout out.

    The padded frame is never built: the in-range block is copied, and the edge rows and columns
    repeat the border, which is what a replicate pad followed by a crop holds (the same values,
    bit for bit). On CPU `F.pad(mode="replicate")` of channels-last frames was about 14% of a `dmc`
    update by itself; this is about 3.5x faster for the whole shift (docs/results.md, 2026-12-06).
    """
    if pad <= 0:
        return x
    b, s, c, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device=generator.device if generator
                            else None).tolist()
    shifted = torch.empty_like(x)  # x's memory layout, e.g. `encoders.channels_last_frames`
    for i, (dy, dx) in enumerate(offsets):
        _shift_into(shifted[i], x[i], dy - pad, dx - pad)
    return shifted


def _shift_into(out: torch.Tensor, src: torch.Tensor, sy: int, sx: int) -> None:
    """`out[..., r, c] = src[..., clamp(r + sy), clamp(c + sx)]` for `(..., H, W)` tensors and
    `|sy|, |sx| < H, W`: a shift with the border repeated beyond the edge."""
    h, w = src.shape[-2:]
    r0, r1 = max(0, -sy), min(h, h - sy)  # rows whose source row is inside the frame
    c0, c1 = max(0, -sx), min(w, w - sx)
    out[..., r0:r1, c0:c1] = src[..., r0 + sy:r1 + sy, c0 + sx:c1 + sx]
    out[..., :r0, c0:c1] = src[..., :1, c0 + sx:c1 + sx]  # above: the first row, repeated
    out[..., r1:, c0:c1] = src[..., h - 1:, c0 + sx:c1 + sx]  # below: the last row
    out[..., :, :c0] = out[..., :, c0:c0 + 1]  # left and right: the first and last column (corners included)
    out[..., :, c1:] = out[..., :, c1 - 1:c1]


def two_views(x: torch.Tensor, pad: int, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently shifted views of `x (B, S, C, H, W)`: what the online and the target
    encoder see."""
    return random_shift(x, pad, generator), random_shift(x, pad, generator)


def _grey_rotation(angle: torch.Tensor) -> torch.Tensor:
    """`angle (B,)` radians -> `(B, 3, 3)` rotations of RGB about the grey axis (Rodrigues): greys stay."""
    cross = torch.tensor([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]], device=angle.device) / math.sqrt(3)
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    eye = torch.eye(3, device=angle.device)
    return cos * eye + sin * cross + (1 - cos) * torch.full((3, 3), 1 / 3, device=angle.device)


def color_jitter(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """`x (B, S, 3, H, W)` float in [-0.5, 0.5], recoloured per sequence (see the module docstring)."""
    b, dev = x.shape[0], x.device

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, *shape, generator=generator, device=generator.device if generator
                                           else None).to(dev)

    mix = uniform(0.6, 1.4, 3)[:, :, None] * _grey_rotation(uniform(-math.pi, math.pi))  # (B, 3, 3)
    u = torch.einsum("bij,bsjhw->bsihw", mix, x + 0.5)
    mean = u.mean(dim=(1, 2, 3, 4), keepdim=True)
    u = (u - mean) * uniform(0.6, 1.4)[:, None, None, None, None] + mean + uniform(-0.2, 0.2)[:, None, None, None, None]
    return u.clamp(0.0, 1.0) - 0.5


def random_conv(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """`x (B, S, 3, H, W)` float in [-0.5, 0.5] through one random 3x3 convolution per sequence."""
    b, s, c, h, w = x.shape
    weights = torch.randn(b * c, c, 3, 3, generator=generator, device=generator.device if generator
                          else None).to(x.device) / math.sqrt(c * 9)
    grouped = rearrange(x, "b s c h w -> s (b c) h w")  # each sequence its own group of filters
    out = F.conv2d(F.pad(grouped, (1, 1, 1, 1), mode="replicate"), weights, groups=b)
    return torch.sigmoid(4 * rearrange(out, "s (b c) h w -> b s c h w", b=b)) - 0.5


def random_remap(x: torch.Tensor, generator: torch.Generator | None = None, features: int = 8,
                 scale: float = 4.0) -> torch.Tensor:
    """`x (B, S, 3, H, W)` float in [-0.5, 0.5] through one random smooth colour map per sequence:
    `sigmoid(A sin(W c + phase) + bias)` of each pixel's colour `c` in [0, 1]³, with `features` random
    sine features whose angular frequencies are drawn N(0, scale²) per channel. Two colours a distance
    `d` apart get features correlated by about exp(-(scale d)² / 2): beyond about 2 / scale (0.5 at the
    default, a quarter of the colour cube's diagonal) they land on nearly independent new colours, so
    the sky, the floor and the body are recoloured each their own way, as the hard colour modes do,
    while a body's shading (nearby colours) stays smooth. Computed in fp32 whatever the autocast
    (sines of arguments up to about ±20 in bf16 would band the colours); channels stay innermost."""
    b, dev = x.shape[0], x.device

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(b, *shape, generator=generator, device=generator.device if generator else None).to(dev)

    w = scale * normal(3, features)  # (B, 3, K)
    phase = 2 * math.pi * torch.rand(b, 1, features, generator=generator,
                                     device=generator.device if generator else None).to(dev)
    mix = normal(features, 3) * (3.0 / math.sqrt(features))  # (B, K, 3): outputs spread over most of (0, 1)
    bias = 0.5 * normal(1, 3)
    s, _, h, wd = x.shape[1:]
    with torch.autocast(dev.type, enabled=False):
        u = rearrange(x.float() + 0.5, "b s c h w -> b (s h w) c")  # each sequence's pixels as a batch of colours
        feats = torch.sin(torch.baddbmm(phase, u, w))  # (B, S*H*W, K)
        out = torch.sigmoid(torch.baddbmm(bias, feats, mix)) - 0.5  # (B, S*H*W, 3)
    return rearrange(out, "b (s h w) c -> b s c h w", s=s, h=h, w=wd).to(x.dtype)


APPEARANCE = {"jitter": color_jitter, "conv": random_conv, "remap": random_remap}


def appearance(x: torch.Tensor, kind: str, generator: torch.Generator | None = None, share: float = 1.0
               ) -> torch.Tensor:
    """`x (B, S, 3, H, W)` float frames under appearance augmentation `kind` ('none', 'jitter', 'conv',
    'remap'), applied to `round(share * B)` sequences (at least one) drawn at random, the rest left clean:
    a mix of clean and augmented data in one batch, as SVEA trains on both (SVEA feeds a clean and an
    augmented copy of every sample; this splits the batch instead, at no extra cost). `share=1`
    recolours every sequence and draws nothing else."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share={share} must be in (0, 1].")
    if kind == "none":
        return x
    b = x.shape[0]
    k = max(1, round(share * b))
    if k >= b:
        return APPEARANCE[kind](x, generator)
    # a random subset: a batch's sequences may come grouped (pretraining on several envs samples each
    # env's share of the batch in turn), so the first k could all be one env's
    chosen = torch.randperm(b, generator=generator, device=generator.device if generator else None)[:k].to(x.device)
    out = x.clone()
    out[chosen] = APPEARANCE[kind](x[chosen], generator)
    return out


__all__ = ["appearance", "color_jitter", "random_conv", "random_remap", "random_shift", "two_views"]
