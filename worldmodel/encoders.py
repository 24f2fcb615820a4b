"""Frame encoders: one image in, one latent vector out.

    x = preprocess(frames)                      # (N, C, H, W) uint8 -> float in [-0.5, 0.5]
    z = ConvEncoder(3, 64, latent_dim=512)(x)   # (N, 512)
    z = PatchEncoder(3, 64, patch=8, latent_dim=512)(x, patch_mask)   # mask: (N, 64), True = hidden

Both end in a LayerNorm (or the `norm` given, e.g. `SimNorm`), so latents have a fixed scale whatever
the input statistics; that keeps latent-prediction losses comparable across environments and stops a
latent from drifting in scale.
`forward_sequence` encodes every window of k frames of a sequence `(B, S, c, H, W)` without
building the stacks (`stacked_conv`), as training does.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


def preprocess(frames: torch.Tensor) -> torch.Tensor:
    """Scale raw pixels to the range the encoders expect.

    Args:
        frames: `(..., C, H, W)` uint8 in [0, 255].

    Returns:
        Same shape, float32 in [-0.5, 0.5].
    """
    if frames.dtype != torch.uint8:
        raise ValueError(f"preprocess expects uint8 frames, got {frames.dtype}; they may be scaled already.")
    return frames.float().div_(255.0).sub_(0.5)  # in place: the same values, without two more full-size tensors


class StackStem(nn.Conv2d):
    """The first layer of an encoder, reading k frames stacked along channels (oldest first).

    With `differences=False` it is a plain `nn.Conv2d`. With `differences=True` its weight is read as
    acting on the newest frame and on the differences between the newest frame and each older one:
    `W x = A x_new + sum_j D_j (x_new - x_j)`. That is the same linear map on the frames (frame weights
    `A + sum_j D_j` on the newest, `-D_j` on older frame j), so it costs nothing at run time, but the
    optimiser now moves the motion weights `D_j` on their own: a velocity is a small pixel difference
    between frames, which a stack of raw frames buries under what the frames share.

    Args:
        in_channels: k * c stacked channels; frames: k.
        differences: read the weight in difference space, as above.
        The rest as `nn.Conv2d`.

    Shapes:
        forward: `(N, k * c, H, W)` -> `(N, out_channels, H', W')`; `frame_weight`: the weight on the
        frames themselves, `(out_channels, k * c, kh, kw)`, what `stacked_conv` convolves with.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, frames: int, differences: bool = False,
                 stride: int = 1, padding: int = 0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        if in_channels % frames:
            raise ValueError(f"in_channels={in_channels} is not {frames} stacked frames of equal channels.")
        self.frames, self.differences = frames, differences

    @property
    def frame_weight(self) -> torch.Tensor:
        if not self.differences or self.frames == 1:
            return self.weight
        w = self.weight.unflatten(1, (self.frames, self.in_channels // self.frames))  # (o, k, c, kh, kw)
        newest = w[:, -1] + w[:, :-1].sum(1)
        return torch.cat([-w[:, :-1], newest[:, None]], dim=1).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.frame_weight, self.bias)


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "silu": nn.SiLU}
"""The conv encoder's activations. ReLU is DQN's, DrQ's and TD-MPC2's choice there: with no
normalisation inside the stack, pre-activations stay small (frames in [-0.5, 0.5], default init), and
there SiLU is nearly linear (x/2 + x^2/4 near 0), so a SiLU stack learns the nonlinear features a
thin object's angle needs slowly. Supervised read-out of cartpole's state from 3 stacked 64x64 frames,
3,000 updates (docs/results.md, 2026-12-07): the pole's sine R^2 0.83 with ReLU against 0.45 with SiLU,
its angular velocity 0.39 against 0.09."""


class ConvEncoder(nn.Module):
    """An optional patchifying stem, stride-2 3x3 convolutions, then a projection to a normalised latent.

    All conv layers have the same width, as in TD-MPC2's pixel encoder: doubling the width at each
    layer (32, 64, 128, 256) costs about 3x the compute on CPU for little gain on control tasks.
    With `stem > 1` the first layer is a `stem x stem` convolution of stride `stem` (a ViT-style
    patch embedding): stride-2 layers at full resolution are where a conv encoder spends its time
    on CPU, and at 64x64 a 4x4 stem cuts the cost ~4x. Activations
    are kept channels-last, which oneDNN convolutions run ~2x faster on CPU. No normalisation
    inside the stack, for speed; the LayerNorm at the end fixes the scale.

    Args:
        in_channels: image channels C (3 for RGB, 3 * k for k stacked frames).
        image_size: image side H = W, a multiple of `stem * 2 ** depth`.
        latent_dim: output size.
        channels: width of every conv layer.
        depth: number of stride-2 conv layers after the stem.
        stem: stride of the first, patchifying layer (1: no stem).
        norm: the latent's final norm (default a LayerNorm of `latent_dim`).
        frames: k, the frames stacked in `in_channels` (the first layer is a `StackStem` of them).
        differences: the first layer learns on the newest frame and its differences from the older
            ones (`StackStem`), the same function at the same cost.
        act: the conv layers' activation, `"silu"` (what every encoder before the choice was built
            with, and `Config.enc_act`'s default) or `"relu"`, which reads far more (see `ACTIVATIONS`).

    Shapes:
        forward: `(N, C, H, W)` float in [-0.5, 0.5] -> `(N, latent_dim)` float.
    """

    def __init__(self, in_channels: int, image_size: int, latent_dim: int, channels: int = 32, depth: int = 4,
                 stem: int = 1, norm: nn.Module | None = None, frames: int = 1, differences: bool = False,
                 act: str = "silu"):
        super().__init__()
        _check_downsampling(image_size, depth, stem)
        if act not in ACTIVATIONS:
            raise ValueError(f"act={act!r}: choose one of {', '.join(ACTIVATIONS)}.")
        activation = ACTIVATIONS[act]
        self.latent_dim = latent_dim
        self.in_channels = in_channels
        self.image_size = image_size
        if stem > 1:
            layers: list[nn.Module] = [StackStem(in_channels, channels, stem, frames, differences, stride=stem), activation()]
        else:
            layers = [StackStem(in_channels, channels, 3, frames, differences, stride=2, padding=1), activation()]
        for _ in range(depth - (stem == 1)):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), activation()]
        self.convs = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        side = image_size // (stem * 2**depth)
        self.project = nn.Linear(channels * side * side, latent_dim)
        self.norm = nn.LayerNorm(latent_dim) if norm is None else norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(N, C, H, W)` float in [-0.5, 0.5] -> `(N, latent_dim)`."""
        _check_image(x, self.in_channels, self.image_size)
        return self._rest(self.convs[0](x.contiguous(memory_format=torch.channels_last)))

    def forward_sequence(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode every window of k = C / c consecutive frames of a sequence, without stacking them.

        `(B, S, c, H, W)` float -> `(B * (S - k + 1), latent_dim)`; equal to `forward` on the stacks.
        """
        return self._rest(stacked_conv(self.convs[0], frames, self.in_channels))

    def layers(self) -> list[list[nn.Parameter]]:
        """The parameters layer by layer from the input: each conv layer, then the projection with its norm."""
        convs = [list(m.parameters()) for m in self.convs if isinstance(m, nn.Conv2d)]
        return [*convs, [*self.project.parameters(), *self.norm.parameters()]]

    def _rest(self, first: torch.Tensor) -> torch.Tensor:
        features = self.convs[1:](first)
        return self.norm(self.project(rearrange(features, "n c h w -> n (c h w)")))


class PatchEncoder(nn.Module):
    """A small ViT whose hidden patches are replaced by a learned mask token (SimMIM-style).

    Unlike MAE, hidden patches are not dropped: every image keeps all `grid * grid` tokens, so a
    batch with a different number of hidden patches per image still stacks into one tensor, and
    the encoder learns to fill in what is hidden. The mask token is placed before the positional
    embedding is added, so the encoder knows *where* each hidden patch is.

    Args:
        in_channels: image channels C.
        image_size: image side H = W, a multiple of `patch`.
        patch: patch side in pixels; `grid = image_size // patch` patches per side.
        latent_dim: output size.
        width: token size.
        depth: number of pre-norm transformer blocks.
        heads: attention heads; must divide `width`.
        norm: the latent's final norm (default a LayerNorm of `latent_dim`).
        frames, differences: as for `ConvEncoder` (the patch embedding is a `StackStem`).

    Shapes:
        forward: `(N, C, H, W)` float in [-0.5, 0.5], optional `(N, grid * grid)` bool mask
        (True = hidden, patches numbered as by `worldmodel.masking.patchify`) -> `(N, latent_dim)`.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        patch: int,
        latent_dim: int,
        width: int = 128,
        depth: int = 2,
        heads: int = 4,
        norm: nn.Module | None = None,
        frames: int = 1,
        differences: bool = False,
    ):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size={image_size} must be a multiple of patch={patch}.")
        if width % heads:
            raise ValueError(f"width={width} must be divisible by heads={heads}.")
        self.latent_dim = latent_dim
        self.in_channels = in_channels
        self.image_size = image_size
        self.grid = image_size // patch
        self.embed = StackStem(in_channels, width, patch, frames, differences, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, self.grid * self.grid, width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        # Small random init, as in ViT/MAE: zeros would make every position and the mask token alike.
        nn.init.trunc_normal_(self.position, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.blocks = nn.Sequential(
            *(
                nn.TransformerEncoderLayer(
                    width, heads, dim_feedforward=4 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
                )
                for _ in range(depth)
            )
        )
        self.final_norm = nn.LayerNorm(width)  # pre-norm blocks leave the residual stream unnormalised
        self.project = nn.Linear(width, latent_dim)
        self.norm = nn.LayerNorm(latent_dim) if norm is None else norm

    def layers(self) -> list[list[nn.Parameter]]:
        """The parameters layer by layer from the input: the patch embedding (with the positions and
        mask token), each transformer block, then the final norms and projection."""
        head = [*self.final_norm.parameters(), *self.project.parameters(), *self.norm.parameters()]
        return [[*self.embed.parameters(), self.position, self.mask_token], *(list(b.parameters()) for b in self.blocks),
                head]

    def forward(self, x: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`(N, C, H, W)` float, optional `(N, L)` bool mask (True = hidden) -> `(N, latent_dim)`."""
        _check_image(x, self.in_channels, self.image_size)
        return self._rest(self.embed(x), patch_mask)

    def forward_sequence(self, frames: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Every window of k = C / c frames of `(B, S, c, H, W)` -> `(B * (S - k + 1), latent_dim)`,
        without stacking them (see `stacked_conv`); `patch_mask` is `(B * (S - k + 1), L)`."""
        return self._rest(stacked_conv(self.embed, frames, self.in_channels), patch_mask)

    def _rest(self, embedded: torch.Tensor, patch_mask: torch.Tensor | None) -> torch.Tensor:
        tokens = rearrange(embedded, "n d h w -> n (h w) d")
        if patch_mask is not None:
            if patch_mask.shape != tokens.shape[:2] or patch_mask.dtype != torch.bool:
                raise ValueError(
                    f"patch_mask must be bool {tuple(tokens.shape[:2])} (True = hidden), "
                    f"got {patch_mask.dtype} {tuple(patch_mask.shape)}."
                )
            hidden = rearrange(patch_mask, "n l -> n l 1")
            tokens = torch.where(hidden, self.mask_token.to(tokens.dtype), tokens)
        tokens = self.final_norm(self.blocks(tokens + self.position))
        return self.norm(self.project(tokens.mean(dim=1)))


def channels_last_frames(frames: torch.Tensor) -> torch.Tensor:
    """`(B, S, C, H, W)`, any dtype -> the same values and shape, stored with the channels innermost
    (`(B, S, H, W, C)` in memory): the layout `stacked_conv` reads and writes without a copy.

    Convert the uint8 frames, before `preprocess`: elementwise ops keep the layout, and a byte copy
    costs a quarter of a float one.
    """
    return frames.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


def stacked_conv(conv: StackStem, frames: torch.Tensor, stacked_channels: int) -> torch.Tensor:
    """`conv` applied to every window of k consecutive frames stacked along channels, as one 3-D
    convolution over the sequence.

    A 2-D convolution of a stack of k frames is a 3-D convolution of the frame sequence with a
    kernel k frames deep (stride 1 in time). Computing it that way never materialises the stacks
    (k times the frames, plus a transposing copy): ~3x faster for the first layer on CPU.

    Args:
        conv: the first layer, built for `stacked_channels = k * c` input channels (oldest frame first);
            its `frame_weight` is convolved.
        frames: `(B, S, c, H, W)` float; stored as by `channels_last_frames`, it is read as a
            channels-last 3-D input and the output needs no copy either (~25% faster on CPU).

    Returns:
        `(B * (S - k + 1), out_channels, H', W')` channels-last, window t covering frames t .. t + k - 1.
    """
    b, s, c = frames.shape[:3]
    k = stacked_channels // c
    if k * c != stacked_channels or s < k:
        raise ValueError(f"frames {tuple(frames.shape)} do not make windows of {stacked_channels} channels.")
    # (o, k*c, kh, kw) -> (o, c, k, kh, kw). A plain view, not einops: einops caches a backend per
    # array type, and meeting `nn.Parameter` inside a compiled graph would invalidate it (a recompile).
    weight = conv.frame_weight.unflatten(1, (k, c)).transpose(1, 2)
    out = torch.nn.functional.conv3d(
        rearrange(frames, "b s c h w -> b c s h w"), weight, conv.bias,
        stride=(1, *conv.stride), padding=(0, *conv.padding), dilation=(1, *conv.dilation))
    # One copy, straight into channels-last (NHWC strides on an NCHW view) for the next layers.
    return rearrange(out, "b o t h w -> (b t) h w o").permute(0, 3, 1, 2)


def _check_downsampling(image_size: int, depth: int, stem: int = 1) -> None:
    factor = stem * 2**depth
    if depth < 0 or stem < 1 or (depth == 0 and stem == 1) or image_size % factor:
        raise ValueError(f"image_size={image_size} must be a multiple of stem * 2 ** depth = {factor} "
                         f"(stem={stem}, depth={depth}), with at least one downsampling layer.")


def _check_image(x: torch.Tensor, channels: int, size: int) -> None:
    if x.ndim != 4 or x.shape[1:] != (channels, size, size):
        raise ValueError(
            f"expected images (N, {channels}, {size}, {size}), got {tuple(x.shape)}; "
            "fold time into the batch with rearrange(x, 'b t c h w -> (b t) c h w')."
        )
    if not x.is_floating_point():
        raise ValueError(f"expected float images in [-0.5, 0.5], got {x.dtype}: call preprocess() first.")
