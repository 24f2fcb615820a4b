"""Uniformly random actions: the seed-phase policy and the baseline every agent must beat."""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict

from worldmodel.actions import ActionSpec


class RandomAgent:
    """Uniform in [-1, 1]^A for continuous actions, a uniform one-hot for discrete ones."""

    def __init__(self, spec: ActionSpec, seed: int = 0):
        self.spec = spec
        self.generator = torch.Generator().manual_seed(seed)

    def reset(self, mask: torch.Tensor, eval: bool = False) -> None:
        pass

    def act(self, obs: torch.Tensor, eval: bool = False) -> torch.Tensor:
        n = obs.shape[0]
        if self.spec.kind == "discrete":
            idx = torch.randint(self.spec.dim, (n,), generator=self.generator)
            return torch.nn.functional.one_hot(idx, self.spec.dim).float()
        return torch.rand(n, self.spec.dim, generator=self.generator) * 2 - 1

    def update(self, batch: TensorDict) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
