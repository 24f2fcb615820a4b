"""MAE-style masking of frame sequences: masks, patches and pixel masking.

The losses counted only where masked (`patch_errors` of `normalized_patch_targets`, averaged by
`masked_mean`; `masked_mse` for vector items) live with the other losses in `worldmodel.objectives`.

Convention throughout: in a mask, `True` (1) means *hidden* from the encoder, `False` visible.
Masks are drawn by sorting uniform noise and hiding the first `k` indices, so every sequence (or
frame) hides exactly `k` items, not `ratio` of them only on average.

Patches are flattened in `(p1 p2 c)` order (row within patch, column within patch, channel),
as in MAE, and numbered row-major over the `grid x grid` patch grid.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange, repeat


def patchify(frames: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches.

    Args:
        frames: `(..., C, H, W)` any dtype, H and W multiples of `patch`; usually `(N, C, H, W)`.
        patch: patch side in pixels.

    Returns:
        `(..., L, patch * patch * C)`, same dtype, with `L = (H // patch) * (W // patch)`.
    """
    _check_divisible(frames.shape[-2:], patch)
    return rearrange(frames, "... c (h p1) (w p2) -> ... (h w) (p1 p2 c)", p1=patch, p2=patch)


def unpatchify(patches: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of `patchify` for square images.

    Args:
        patches: `(..., L, patch * patch * C)` with `L` a perfect square.
        patch: patch side in pixels.

    Returns:
        `(..., C, H, W)` with `H = W = sqrt(L) * patch`, same dtype.
    """
    grid = math.isqrt(patches.shape[-2])
    if grid * grid != patches.shape[-2]:
        raise ValueError(f"unpatchify needs a square patch grid, got L={patches.shape[-2]} patches.")
    return rearrange(patches, "... (h w) (p1 p2 c) -> ... c (h p1) (w p2)", h=grid, p1=patch, p2=patch)


def frame_mask(
    batch: int,
    time: int,
    ratio: float,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Hide whole frames: exactly `round(ratio * time)` per sequence, at random positions.

    At least one frame per sequence always stays visible (the count is capped at `time - 1`),
    since a sequence with nothing visible gives the encoder nothing to infer from.

    Args:
        batch, time: mask shape.
        ratio: fraction of frames to hide, in [0, 1].
        generator: for reproducible masks; its device is used when `device` is not given.
        device: where to create the mask (default: the generator's device, else CPU).

    Returns:
        `(batch, time)` bool, True = hidden.
    """
    _check_ratio(ratio)
    hidden = min(round(ratio * time), time - 1)
    return _hide_lowest_noise((batch, time), hidden, generator, device)


def tube_mask(
    batch: int,
    time: int,
    grid: int,
    ratio: float,
    tube: int,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Hide space-time tubes (VideoMAE): the same patches hidden for `tube` consecutive frames.

    Time is cut into runs `[0, tube), [tube, 2 * tube), ...` (the last run may be shorter); each
    run draws its own set of exactly `round(ratio * grid * grid)` hidden patches, shared by all its
    frames, so a hidden patch cannot be copied from the same place in a neighbouring frame.
    As with `frame_mask`, at least one patch per frame stays visible.

    Args:
        batch, time: leading mask shape.
        grid: patches per image side (`image_size // patch`).
        ratio: fraction of patches hidden in every frame, in [0, 1].
        tube: run length in frames, >= 1; `tube >= time` gives one mask for the whole sequence.
        generator, device: as in `frame_mask`.

    Returns:
        `(batch, time, grid * grid)` bool, True = hidden; patches numbered as by `patchify`.
    """
    _check_ratio(ratio)
    if tube < 1:
        raise ValueError(f"tube must be >= 1 frame, got {tube}.")
    patches = grid * grid
    hidden = min(round(ratio * patches), patches - 1)
    runs = math.ceil(time / tube)
    per_run = _hide_lowest_noise((batch, runs, patches), hidden, generator, device)
    return repeat(per_run, "b n l -> b (n r) l", r=tube)[:, :time]


def apply_pixel_mask(frames: torch.Tensor, mask: torch.Tensor, patch: int) -> torch.Tensor:
    """Blank out what a mask hides, in pixel space (for pixel-level inputs to a conv encoder).

    Hidden pixels become 0, which is mid-grey for frames scaled to [-0.5, 0.5] by `preprocess`.

    Args:
        frames: `(B, T, C, H, W)` float.
        mask: `(B, T)` bool (whole frames) or `(B, T, L)` bool (patches, `L = (H // patch) * (W // patch)`),
            True = hidden.
        patch: patch side in pixels; unused for a frame mask.

    Returns:
        `(B, T, C, H, W)`, same dtype as `frames`, a new tensor.
    """
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True = hidden), got {mask.dtype}.")
    if mask.ndim == 2:
        pixels = rearrange(mask, "b t -> b t 1 1 1")
    elif mask.ndim == 3:
        _check_divisible(frames.shape[-2:], patch)
        rows = frames.shape[-2] // patch
        pixels = repeat(mask, "b t (h w) -> b t 1 (h p1) (w p2)", h=rows, p1=patch, p2=patch)
    else:
        raise ValueError(f"mask must be (B, T) or (B, T, L), got shape {tuple(mask.shape)}.")
    return frames.clone().masked_fill_(pixels, 0)  # clone keeps the frames' memory layout; masked_fill does not


def _hide_lowest_noise(
    shape: tuple[int, ...],
    hidden: int,
    generator: torch.Generator | None,
    device: torch.device | str | None,
) -> torch.Tensor:
    """`shape` bool mask with exactly `hidden` True entries along the last dim, at random places."""
    if device is None:
        device = generator.device if generator is not None else "cpu"
    noise = torch.rand(shape, generator=generator, device=device)
    chosen = noise.argsort(dim=-1)[..., :hidden]
    return torch.zeros(shape, dtype=torch.bool, device=device).scatter_(-1, chosen, True)


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must be in [0, 1], got {ratio}.")


def _check_divisible(size: torch.Size, patch: int) -> None:
    if patch < 1 or size[0] % patch or size[1] % patch:
        raise ValueError(f"image size {tuple(size)} must be a multiple of patch={patch}.")
