"""Collecting experience: vector envs stepped by a policy, every step written to the replay.

`Collector` is what the online loop and pretraining share (whole episodes outside the replay, for
probes and videos, are `agents.episodes.record_episodes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from worldmodel.actions import ActionSpec
from worldmodel.replay import SequenceReplay


def _state(info: dict, n: int) -> np.ndarray | None:
    state = info.get("state")
    return None if state is None else np.asarray(state, dtype=np.float32).reshape(n, -1)


@dataclass
class StepResult:
    env_steps: int
    """Environment steps this agent step took (live envs x action repeat)."""
    episodes: list[tuple[float, int]] = field(default_factory=list)
    """(return, length in env steps) of each episode that ended."""
    done: torch.Tensor | None = None
    """`(N,)` bool: envs whose episode ended (their next step starts a new one)."""
    first: torch.Tensor | None = None
    """`(N,)` bool: envs whose new observation is the first frame of an episode."""


class Collector:
    """Steps `gymnasium.vector` envs (NEXT_STEP autoreset) and stores every step in `replay`.

    The step after an episode ends returns the first frame of the next episode (reward 0, action
    ignored): it is stored with `is_first` and counts no environment step.
    """

    def __init__(self, envs, spec: ActionSpec, replay: SequenceReplay, action_repeat: int, seed: int):
        self.envs, self.spec, self.replay = envs, spec, replay
        self.action_repeat = action_repeat
        n = envs.num_envs
        self.obs, info = envs.reset(seed=seed)
        replay.add(self.obs, np.zeros((n, spec.dim)), np.zeros(n), np.zeros(n), np.zeros(n), np.ones(n),
                   _state(info, n))
        self.returns, self.lengths = np.zeros(n), np.zeros(n, dtype=int)
        self.reset_next = np.zeros(n, dtype=bool)

    @property
    def first(self) -> torch.Tensor:
        """`(N,)` bool: envs whose current observation starts an episode."""
        return torch.as_tensor(self.reset_next)

    def observation(self) -> torch.Tensor:
        """Current observations `(N, C, H, W)` uint8."""
        return torch.from_numpy(np.ascontiguousarray(self.obs))

    def step(self, action: torch.Tensor) -> StepResult:
        """Apply action vectors `(N, A)`; store the transition; report finished episodes."""
        obs, reward, terminated, truncated, info = self.envs.step(self.spec.to_env(action))
        is_first = self.reset_next
        self.replay.add(obs, action, reward, terminated, truncated, is_first, _state(info, len(obs)))
        live = ~is_first
        self.returns += np.where(live, reward, 0.0)
        self.lengths += live
        done = np.logical_or(terminated, truncated) & live
        result = StepResult(int(live.sum()) * self.action_repeat, done=torch.as_tensor(done),
                            first=torch.as_tensor(is_first))
        for i in np.flatnonzero(done):
            result.episodes.append((float(self.returns[i]), int(self.lengths[i]) * self.action_repeat))
            self.returns[i], self.lengths[i] = 0.0, 0
        self.obs, self.reset_next = obs, done
        return result


