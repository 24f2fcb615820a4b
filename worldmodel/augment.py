"""Image augmentation during updates: random shifts (pad, then crop back), as DrQ and TD-MPC2 do.

    x = preprocess(frames)                      # (B, S, 3, H, W) float
    online, target = two_views(x, pad=4)        # each sequence shifted by its own (dy, dx), per view

One shift per sequence, the same for all its frames: the encoder stacks `history` frames and the
dynamics relate consecutive latents, so a shift that jumped from frame to frame would be motion that
never happened. The online and the target encoder see independently shifted views of the same
frames (two views, as DrQ's target averaging and CURL's query/key pairs), so the contrastive and
consistency targets reward latents that do not move with a few pixels of shift; the masked
objective predicts the pixels of the online view it was shown.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`x (B, S, C, H, W)` float, each sequence shifted by a random integer `(dy, dx)` in
    `[-pad, pad]`: edge-replicate padding by `pad`, then a crop back to `(H, W)`. Same shape out."""
    if pad <= 0:
        return x
    b, s, c, h, w = x.shape
    padded = F.pad(x.flatten(0, 1), (pad, pad, pad, pad), mode="replicate").unflatten(0, (b, s))
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device=generator.device if generator
                            else None).tolist()
    shifted = torch.empty_like(x)  # x's memory layout, e.g. `encoders.channels_last_frames`
    for i, (dy, dx) in enumerate(offsets):
        shifted[i] = padded[i, :, :, dy:dy + h, dx:dx + w]
    return shifted


def two_views(x: torch.Tensor, pad: int, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently shifted views of `x (B, S, C, H, W)`: what the online and the target
    encoder see."""
    return random_shift(x, pad, generator), random_shift(x, pad, generator)


__all__ = ["random_shift", "two_views"]
