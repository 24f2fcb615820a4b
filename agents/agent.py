"""The planning agent: encode the last `history` frames, plan in latent space, act.

It keeps, per environment, the frame window and the previous plan (shifted by one step as the
warm start); training and evaluation envs have separate memories, so an evaluation in the middle
of training does not disturb the episodes in flight.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict

from agents.planners import Plan, SamplingPlanner, make_planner
from worldmodel.config import Config
from worldmodel.history import FrameHistory
from worldmodel.model import WorldModel
from worldmodel.trainer import WorldModelTrainer


class _Memory:
    def __init__(self, n: int, k: int):
        self.frames = FrameHistory(n, k)
        self.first = torch.ones(n, dtype=torch.bool)
        self.plan: Plan | None = None


class PlanningAgent:
    """Args:
        cfg: config (planner, history, precision).
        model: the world model, on `device`.
        trainer: its trainer (updates the model; None for an evaluation-only agent).
        device: where planning runs.
        seed: seeds the planner's sampling.
    """

    def __init__(self, cfg: Config, model: WorldModel, trainer: WorldModelTrainer | None, device: torch.device,
                 seed: int = 0):
        self.cfg, self.model, self.trainer, self.device = cfg, model, trainer, device
        self.planner: SamplingPlanner = make_planner(cfg, model)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self._memory: dict[bool, _Memory] = {}

    def _mem(self, n: int, eval: bool) -> _Memory:
        mem = self._memory.get(eval)
        if mem is None or mem.first.shape[0] != n:
            mem = self._memory[eval] = _Memory(n, self.cfg.history)
        return mem

    def reset(self, mask: torch.Tensor, eval: bool = False) -> None:
        """Envs where `mask (N,)` is set start a new episode: refill their frame window, forget their plan."""
        mem = self._mem(mask.shape[0], eval)
        mem.first = mem.first | mask.cpu().bool()

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, eval: bool = False) -> torch.Tensor:
        """`obs (N, C, H, W) uint8` -> action vectors `(N, A)` (on CPU)."""
        mem = self._mem(obs.shape[0], eval)
        stacks = mem.frames.push(obs, mem.first)
        self.model.eval()
        z = self.model.encode(stacks.to(self.device, non_blocking=True))
        warm = mem.plan
        if warm is not None and mem.first.any():
            warm = warm.select(mem.first.to(warm.mean.device), self.planner.initial(z.shape[0], z.device))
        mem.first = torch.zeros_like(mem.first)
        action, plan = self.planner.plan(z, warm, eval=eval, generator=self.generator)
        mem.plan = self.planner.shift(plan)
        return action.cpu()

    def update(self, batch: TensorDict) -> dict[str, float]:
        return self.trainer.update(batch)

    def state_dict(self) -> dict[str, Any]:
        return {"trainer": self.trainer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trainer.load_state_dict(state["trainer"])
        self.generator.set_state(state["generator"])
