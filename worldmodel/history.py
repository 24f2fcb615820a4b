"""Frame history: the model sees the last `k` frames stacked along channels.

The replay stores every frame once; stacks are built here, at training time from sampled sequences
and at acting time from a small per-environment window.
"""

from __future__ import annotations

import torch
from einops import rearrange


def stack_history(frames: torch.Tensor, k: int) -> torch.Tensor:
    """Sliding windows of `k` frames: `(B, S, C, H, W)` -> `(B, S - k + 1, k * C, H, W)`, oldest first.

    Window `t` holds frames `t .. t + k - 1`; the first `k - 1` frames of a sequence serve only as
    history. Sampled sequences never cross episodes, so every window lies in one episode.
    """
    if frames.ndim != 5 or frames.shape[1] < k:
        raise ValueError(f"stack_history needs (B, S >= {k}, C, H, W) frames, got {tuple(frames.shape)}.")
    windows = frames.unfold(1, k, 1)  # (B, S-k+1, C, H, W, k)
    return rearrange(windows, "b t c h w k -> b t (k c) h w")


def window_batch(frames: torch.Tensor, k: int) -> torch.Tensor:
    """Like `stack_history`, with time folded into the batch and channels-last memory:
    `(B, S, C, H, W)` -> `(B * (S - k + 1), k * C, H, W)`.

    One copy, straight into the layout oneDNN convolutions prefer (NHWC strides on an NCHW view).
    """
    if frames.ndim != 5 or frames.shape[1] < k:
        raise ValueError(f"window_batch needs (B, S >= {k}, C, H, W) frames, got {tuple(frames.shape)}.")
    windows = frames.unfold(1, k, 1)  # (B, S-k+1, C, H, W, k)
    return rearrange(windows, "b t c h w k -> (b t) h w (k c)").permute(0, 3, 1, 2)


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

    def state_dict(self) -> dict:
        return {"window": self.window}

    def load_state_dict(self, state: dict) -> None:
        self.window = state["window"]
