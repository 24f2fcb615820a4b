"""How actions look to the model: always a float vector `(..., dim)`.

Continuous actions are the env's [-1, 1] vector; discrete actions are one-hot over `dim` choices.
The all-zeros vector means "no action" (the first step of an episode, which no action led to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch


@dataclass(frozen=True)
class ActionSpec:
    kind: Literal["continuous", "discrete"]
    dim: int
    """Vector size: the Box dimension, or the number of discrete choices."""

    @classmethod
    def from_space(cls, space: Any) -> ActionSpec:
        """From a gymnasium `Box` (1-D, already scaled to [-1, 1]) or `Discrete` space (single or batched)."""
        name = type(space).__name__
        if name == "Discrete":
            return cls("discrete", int(space.n))
        if name == "MultiDiscrete" and len(set(np.asarray(space.nvec).tolist())) == 1:
            return cls("discrete", int(np.asarray(space.nvec).reshape(-1)[0]))  # a batched Discrete
        if name == "Box":
            return cls("continuous", int(space.shape[-1]))
        raise ValueError(f"Unsupported action space {space}: use a 1-D Box or a Discrete space.")

    def to_env(self, vectors: torch.Tensor) -> np.ndarray:
        """`(N, dim)` vectors -> env actions: argmax indices `(N,)` int64, or clipped `(N, dim)` float32."""
        vectors = vectors.detach().float().cpu()
        if self.kind == "discrete":
            return vectors.argmax(-1).numpy().astype(np.int64)
        return vectors.clamp(-1.0, 1.0).numpy().astype(np.float32)
