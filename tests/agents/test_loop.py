"""The evaluation loop against a scripted vector env: per-env quotas, autoreset steps left out."""

import numpy as np
import pytest
import torch

from agents.episodes import evaluate
from worldmodel.actions import ActionSpec


class ScriptedEnvs:
    """N envs in NEXT_STEP autoreset mode; env i's episodes last `lengths[i]` steps with reward 1
    each, the last one terminated (env 0) or truncated (others). The step after an episode ends
    returns the next episode's first frame with reward 100, which must never be counted."""

    def __init__(self, lengths):
        self.lengths, self.num_envs = lengths, len(lengths)
        self.t = np.zeros(self.num_envs, int)
        self.ended = np.zeros(self.num_envs, bool)

    def reset(self, seed=None):
        self.t[:], self.ended[:] = 0, False
        return np.zeros((self.num_envs, 3, 4, 4), np.uint8), {}

    def step(self, actions):
        reward = np.where(self.ended, 100.0, 1.0)
        self.t = np.where(self.ended, 0, self.t + 1)
        end = ~self.ended & (self.t == np.array(self.lengths))
        terminated = end & (np.arange(self.num_envs) == 0)
        truncated = end & (np.arange(self.num_envs) > 0)
        self.ended = end
        return np.zeros((self.num_envs, 3, 4, 4), np.uint8), reward, terminated, truncated, {}


class Counting:
    """An agent that counts its resets per env."""

    def __init__(self, n):
        self.resets = np.zeros(n, int)

    def reset(self, mask, eval=False):
        self.resets += mask.numpy().astype(int)

    def act(self, obs, eval=False):
        return torch.zeros(obs.shape[0], 1)


def test_each_env_plays_its_quota_and_autoreset_steps_do_not_count():
    envs, agent = ScriptedEnvs([2, 5]), Counting(2)
    returns = evaluate(agent, envs, ActionSpec("continuous", 1), episodes=3, seed=0)
    # Env 0 (short episodes) plays 2 of the 3, env 1 plays 1: not "the first 3 to finish".
    assert returns.tolist() == [2.0, 2.0, 5.0]
    assert agent.resets[0] >= 2 and agent.resets[1] >= 1  # the start, then each new episode


class TimedEnvs(ScriptedEnvs):
    """ScriptedEnvs whose frames and `info["state"]` hold each env's step within its episode."""

    def _frames(self):
        return np.broadcast_to(self.t[:, None, None, None], (self.num_envs, 3, 4, 4)).astype(np.uint8)

    def reset(self, seed=None):
        super().reset(seed)
        return self._frames(), {"state": self.t[:, None].astype(np.float32)}

    def step(self, actions):
        _, reward, terminated, truncated, _ = super().step(actions)
        return self._frames(), reward, terminated, truncated, {"state": self.t[:, None].astype(np.float32)}


def test_the_trace_holds_each_counted_episode_whole_and_nothing_else():
    trace = []
    evaluate(Counting(2), TimedEnvs([2, 5]), ActionSpec("continuous", 1), episodes=3, seed=0, trace=trace)
    # in the order they ended: env 0's two episodes (steps 0..2), then env 1's (steps 0..5); env 0's
    # third episode, past its quota, is not kept
    assert [ep["state"][:, 0].tolist() for ep in trace] == [[0, 1, 2], [0, 1, 2], [0, 1, 2, 3, 4, 5]]
    assert all(torch.equal(ep["obs"][:, 0, 0, 0].float(), ep["state"][:, 0]) for ep in trace)
    assert trace[0]["obs"].shape == (3, 3, 4, 4) and trace[0]["obs"].dtype == torch.uint8
    # the reward of the step into each frame (none into the first; the autoreset step's 100 never)
    assert [ep["reward"].tolist() for ep in trace] == [[0, 1, 1], [0, 1, 1], [0, 1, 1, 1, 1, 1]]
    # env 0's episodes terminate, env 1's are truncated (a time limit is not a terminal state)
    assert [ep["terminated"].tolist() for ep in trace] == [[False, False, True], [False, False, True], [False] * 6]
    assert all(ep["action"].shape == (len(ep), 1) and not ep["action"].any() for ep in trace)  # Counting acts 0


class Echo(Counting):
    """Acts with a tenth of its newest frame's pixel value (the frame's step count in TimedEnvs)."""

    def act(self, obs, eval=False):
        return obs[:, -1, 0, 0][:, None].float() / 10


def test_the_trace_s_action_at_a_frame_is_the_one_that_led_to_it():
    trace = []
    evaluate(Echo(2), TimedEnvs([2, 5]), ActionSpec("continuous", 1), episodes=3, seed=0, trace=trace)
    # frame t came from the action taken in frame t - 1 (t - 1 tenths); nothing led to the first frame
    assert [ep["action"][:, 0].tolist() for ep in trace] == [
        pytest.approx([0, 0, 0.1]), pytest.approx([0, 0, 0.1]), pytest.approx([0, 0, 0.1, 0.2, 0.3, 0.4])]
