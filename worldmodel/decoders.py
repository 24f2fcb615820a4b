"""Pixel decoder: a latent vector back to an image, for reconstruction losses and for looking at latents."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class ConvDecoder(nn.Module):
    """A linear map to a small feature map, then stride-2 transposed convolutions up to full size.

    The mirror of `worldmodel.encoders.ConvEncoder`: the same constant width in every layer
    (doubling widths towards the bottleneck costs about 2x the compute on CPU). The linear layer
    produces a `image_size / (stem * 2 ** depth)` map (4x4 for 64x64 images) rather than a 1x1 one,
    because a large transposed conv from 1x1 is slow on CPU. Kernels are 4x4 with stride 2: a kernel
    size divisible by the stride spreads every input pixel evenly, avoiding checkerboard artefacts.
    With `stem > 1` the last layer un-patchifies: each position emits a `stem x stem` patch (the
    full-resolution layers are where a conv decoder spends its time on CPU).
    The output has no activation: it predicts pixels scaled as by `preprocess`, for an MSE loss.

    Args:
        latent_dim: input size.
        out_channels: image channels C.
        image_size: image side H = W, a multiple of `stem * 2 ** depth`.
        channels: width of every hidden layer.
        depth: number of stride-2 upsampling layers.
        stem: stride of the last, un-patchifying layer (1: none).

    Shapes:
        forward: `(N, latent_dim)` float -> `(N, out_channels, image_size, image_size)` float,
        about [-0.5, 0.5].
    """

    def __init__(self, latent_dim: int, out_channels: int, image_size: int, channels: int = 32, depth: int = 4,
                 stem: int = 1):
        super().__init__()
        factor = stem * 2**depth
        if depth < 0 or stem < 1 or (depth == 0 and stem == 1) or image_size % factor:
            raise ValueError(f"image_size={image_size} must be a multiple of stem * 2 ** depth = {factor} "
                             f"(stem={stem}, depth={depth}), with at least one upsampling layer.")
        self.latent_dim = latent_dim
        self.side = image_size // factor
        self.project = nn.Sequential(nn.Linear(latent_dim, channels * self.side * self.side), nn.SiLU())
        layers: list[nn.Module] = []
        for layer in range(depth):
            last = layer == depth - 1 and stem == 1
            layers.append(nn.ConvTranspose2d(channels, out_channels if last else channels, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.SiLU())
        if stem > 1:
            layers.append(nn.ConvTranspose2d(channels, out_channels, stem, stride=stem))
        self.deconvs = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.stem = stem

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`(N, latent_dim)` -> `(N, out_channels, image_size, image_size)`, stored channels-last (the
        layout of the frames the masked loss compares it with)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"expected latents (N, {self.latent_dim}), got {tuple(z.shape)}; "
                "fold time into the batch with rearrange(z, 'b t d -> (b t) d')."
            )
        features = rearrange(self.project(z), "n (c h w) -> n c h w", h=self.side, w=self.side)
        features = features.contiguous(memory_format=torch.channels_last)
        if self.stem == 1:
            return self.deconvs(features)
        return unpatchify_layer(self.deconvs[-1], self.deconvs[:-1](features))


def unpatchify_layer(layer: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """`layer`, a transposed convolution whose kernel equals its stride s, applied as what it is: one
    matrix product per input position (each emits an s x s patch), then the patches put side by side.

    Equal to `layer(x)` (up to rounding), ~4x faster on CPU than the general transposed convolution,
    which at full resolution is where the decoder spent most of its time.

    Args:
        layer: `ConvTranspose2d(c, o, s, stride=s)`, no padding.
        x: `(N, c, h, w)` float, best channels-last (then the product reads it without a copy).

    Returns:
        `(N, o, h * s, w * s)`, channels-last.
    """
    s, (c, o) = layer.stride[0], layer.weight.shape[:2]
    # (c, o, s, s) -> (s * s * o, c), patch pixels outermost; plain views, not einops, as in stacked_conv
    weight = layer.weight.permute(2, 3, 1, 0).reshape(s * s * o, c)
    bias = layer.bias.repeat(s * s)
    patches = nn.functional.linear(x.permute(0, 2, 3, 1), weight, bias)  # (N, h, w, s * s * o)
    # One copy, into channels-last (NHWC memory, NCHW view): the layout of the frames it is compared with.
    return rearrange(patches, "n h w (p1 p2 o) -> n (h p1) (w p2) o", p1=s, p2=s).permute(0, 3, 1, 2)
