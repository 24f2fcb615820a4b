"""Frame history for acting: the model sees the last `k` frames stacked along channels.

The replay stores every frame once. At training time the encoders read sampled sequences without
ever building the stacks (`encoders.stacked_conv`); at acting time `FrameHistory` keeps a small
window per environment and stacks it.
"""

from __future__ import annotations

import torch
from einops import rearrange


def pad_history(frames: torch.Tensor, k: int) -> torch.Tensor:
    """An episode's frames `(L, C, H, W)` with k - 1 copies of its first frame in front, `(L + k - 1, C, H, W)`:
    window t of k frames is then what an agent acting at step t stacks (`FrameHistory` at an episode start)."""
    return torch.cat([frames[:1].expand(k - 1, *frames.shape[1:]), frames])


class FrameHistory:
    """The last `k` frames of each of `n` environments, for acting.

    At an episode start the window is filled with the first frame, as gymnasium's frame stacking
    does: `push(frames, first=mask)`.
    """

    def __init__(self, n: int, k: int):
        self.n, self.k = n, k
        self.window: torch.Tensor | None = None  # (n, k, C, H, W) uint8

    def push(self, frames: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        """frames `(n, C, H, W)` uint8 (the newest 3 channels are used), first `(n,)` bool -> `(n, k*C, H, W)`."""
        frames = frames[:, -3:]
        if self.window is None:
            self.window = frames[:, None].repeat(1, self.k, 1, 1, 1)
        else:
            self.window = torch.cat([self.window[:, 1:], frames[:, None]], dim=1)
            first = first.to(torch.bool)
            if first.any():
                self.window[first] = frames[first, None].expand(-1, self.k, -1, -1, -1)
        return rearrange(self.window, "n k c h w -> n (k c) h w")
