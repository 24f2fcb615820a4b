"""The contract between the training loop and any agent.

The loop hands observations of all parallel envs at once and receives action *vectors*
(`worldmodel.actions.ActionSpec`): `(N, A)` float32, continuous in [-1, 1] or one-hot.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from tensordict import TensorDict


class Agent(Protocol):
    def reset(self, mask: torch.Tensor, eval: bool = False) -> None:
        """Forget per-env memory (frame history, previous plan) where `mask: (N,) bool` is set.
        Training and evaluation envs (`eval`) keep separate memories."""

    def act(self, obs: torch.Tensor, eval: bool = False) -> torch.Tensor:
        """`obs: (N, C, H, W) uint8` -> actions `(N, A)` float32. `eval` turns exploration off."""

    def update(self, batch: TensorDict) -> dict[str, float]:
        """One gradient update from a `(B, T)` replay batch; returns named metrics."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (networks, optimisers, RNG)."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
