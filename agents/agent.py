"""The planning agent: encode the last `history` frames, plan in latent space, act.

It keeps, per environment, the frame window and the previous plan (shifted by one step as the
warm start); training and evaluation envs have separate memories, so an evaluation in the middle
of training does not disturb the episodes in flight.

Every env has its own random stream for planning (one per env index, for training and for
evaluation), seeded from (seed, env index, memory) by `stream_seed`: env i's actions under a seed
do not depend on how many envs are planned with it in one batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from agents.planners import Plan, SamplingPlanner, make_planner
from worldmodel.config import Config
from worldmodel.history import FrameHistory
from worldmodel.model import WorldModel
from worldmodel.trainer import WorldModelTrainer

_MEMORIES = {False: "train", True: "eval"}


def stream_seed(seed: int, env: int, eval: bool) -> int:
    """Seed of the planning stream of env index `env` (training or `eval` memory) under agent `seed`:
    mixed by `numpy.random.SeedSequence`, so streams of neighbouring seeds and envs are unrelated."""
    # SeedSequence takes non-negative entropy only; the modulo keeps negative seeds distinct.
    words = np.random.SeedSequence([seed % 2**64, env, int(eval)]).generate_state(1, np.uint64)
    return int(words[0])


class _Memory:
    def __init__(self, n: int, k: int):
        self.frames = FrameHistory(n, k)
        self.first = torch.ones(n, dtype=torch.bool)
        self.plan: Plan | None = None


class PlanningAgent:
    """Args:
        cfg: config (planner, history, precision; `compile` compiles the planner's rollout).
        model: the world model, on `device`.
        trainer: its trainer (updates the model; None for an agent that only acts and is not checkpointed).
        device: where planning runs.
        seed: seeds the planner's sampling, one stream per env (see `stream_seed`).
    """

    def __init__(self, cfg: Config, model: WorldModel, trainer: WorldModelTrainer | None, device: torch.device,
                 seed: int = 0):
        self.cfg, self.model, self.trainer, self.device, self.seed = cfg, model, trainer, device, seed
        self.planner: SamplingPlanner = make_planner(cfg, model)
        self._streams: dict[bool, list[torch.Generator]] = {False: [], True: []}
        self._memory: dict[bool, _Memory] = {}
        self._reported: set[int] = set()

    def _mem(self, n: int, eval: bool) -> _Memory:
        mem = self._memory.get(eval)
        if mem is None or mem.first.shape[0] != n:
            mem = self._memory[eval] = _Memory(n, self.cfg.history)
        return mem

    def generators(self, n: int, eval: bool = False) -> list[torch.Generator]:
        """The planning streams of envs 0 .. n-1 of one memory; each lives as long as the agent."""
        streams = self._streams[eval]
        while len(streams) < n:
            seed = stream_seed(self.seed, len(streams), eval)
            streams.append(torch.Generator(device=self.device).manual_seed(seed))
        return streams[:n]

    def reset(self, mask: torch.Tensor, eval: bool = False) -> None:
        """Envs where `mask (N,)` is set start a new episode: refill their frame window, forget their plan."""
        mem = self._mem(mask.shape[0], eval)
        mem.first = mem.first | mask.cpu().bool()

    @torch.inference_mode()
    def act(self, obs: torch.Tensor, eval: bool = False) -> torch.Tensor:
        """`obs (N, C, H, W) uint8` -> action vectors `(N, A)` (on CPU)."""
        n = obs.shape[0]
        mem = self._mem(n, eval)
        stacks = mem.frames.push(obs, mem.first)
        self.model.eval()
        z = self.model.encode(stacks.to(self.device, non_blocking=True))
        warm = mem.plan
        if warm is not None and mem.first.any():
            warm = warm.select(mem.first.to(warm.mean.device), self.planner.initial(z.shape[0], z.device))
        mem.first = torch.zeros_like(mem.first)
        action, plan = self.planner.plan(z, warm, eval=eval, generator=self.generators(n, eval))
        mem.plan = self.planner.shift(plan)
        return action.cpu()

    def eval_streams(self) -> list[torch.Tensor]:
        """The random states of the evaluation memory's planning streams (training's are not touched)."""
        return [g.get_state() for g in self._streams[True]]

    def set_eval_streams(self, states: list[torch.Tensor]) -> None:
        """Put the evaluation streams back to `eval_streams()`'s states, so that evaluations played one
        after another draw the same planner noise (a paired comparison); streams made since are dropped."""
        self._streams[True] = self._streams[True][:len(states)]
        for generator, state in zip(self.generators(len(states), eval=True), states):
            generator.set_state(state)

    def update(self, batch: TensorDict) -> dict[str, float]:
        """One world-model update; its metrics, plus `compile/plan_seconds_n{N}` once per batch size N
        the compiled planner has been compiled for since the last update."""
        metrics = self.trainer.update(batch)
        for n, seconds in self.planner.compile_seconds.items():
            if n not in self._reported:
                metrics[f"compile/plan_seconds_n{n}"] = seconds
                self._reported.add(n)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        streams = {name: [g.get_state() for g in self._streams[eval]] for eval, name in _MEMORIES.items()}
        return {"trainer": self.trainer.state_dict(), "generators": streams}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`; a checkpoint from before per-env streams (one "generator") resumes
        env 0's training stream from it."""
        self.trainer.load_state_dict(state["trainer"])
        saved = state["generators"] if "generators" in state else {"train": [state["generator"]], "eval": []}
        for eval, name in _MEMORIES.items():
            self._streams[eval] = []
            for generator, rng_state in zip(self.generators(len(saved[name]), eval), saved[name]):
                generator.set_state(rng_state)
