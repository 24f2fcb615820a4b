"""Collecting experience: vector envs stepped by a policy, every step written to the replay.

`Collector` is what the online loop and pretraining share. `record_episodes` records whole
episodes of a single env (for probes and videos), outside the replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tensordict import TensorDict

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


def record_episodes(env, spec: ActionSpec, episodes: int, seed: int, policy=None) -> list[TensorDict]:
    """Record whole episodes of one pixel env (uniformly random actions unless `policy` is given).

    Returns a list of TensorDicts of length L (steps + 1), in the replay's convention:
    `obs (L, 3, H, W) uint8` (newest frame), `action (L, A)` (what led here, zeros first),
    `reward (L,)`, `terminated (L,)`, `truncated (L,)`, and `state (L, S)` where the env has one.
    `policy(obs (1, C, H, W) uint8, first: bool) -> (1, A)` picks actions.
    """
    generator = torch.Generator().manual_seed(seed)
    recorded = []
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        steps = [(obs, np.zeros(spec.dim, np.float32), 0.0, False, False, info.get("state"))]
        done, first = False, True
        while not done:
            if policy is None:
                if spec.kind == "discrete":
                    action = torch.nn.functional.one_hot(torch.randint(spec.dim, (1,), generator=generator), spec.dim).float()
                else:
                    action = torch.rand(1, spec.dim, generator=generator) * 2 - 1
            else:
                action = policy(torch.from_numpy(obs)[None], first)
            first = False
            obs, reward, terminated, truncated, info = env.step(spec.to_env(action)[0])
            done = terminated or truncated
            steps.append((obs, action[0].numpy(), reward, terminated, truncated, info.get("state")))
        data = {
            "obs": torch.from_numpy(np.stack([s[0][-3:] for s in steps])),
            "action": torch.from_numpy(np.stack([s[1] for s in steps]).astype(np.float32)),
            "reward": torch.tensor([s[2] for s in steps], dtype=torch.float32),
            "terminated": torch.tensor([s[3] for s in steps]),
            "truncated": torch.tensor([s[4] for s in steps]),
        }
        if steps[0][5] is not None:
            data["state"] = torch.from_numpy(np.stack([s[5] for s in steps]).astype(np.float32))
        recorded.append(TensorDict(data, batch_size=[len(steps)]))
    return recorded
