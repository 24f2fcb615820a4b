"""The value check: the value the planner reads, against the discounted return that followed."""

import pytest
import torch
from tensordict import TensorDict

from agents.analysis.probe import (
    agreement,
    beliefs_on_episode,
    discounted_returns,
    reward_on_episodes,
    state_on_episodes,
    value_on_episodes,
)


def test_discounted_returns_sum_what_followed_and_bootstrap_the_end():
    rewards = torch.tensor([0.0, 1.0, 2.0, 4.0])  # reward t led to step t
    assert discounted_returns(rewards, 0.5).tolist() == [1.0 + 0.5 * 2 + 0.25 * 4, 2.0 + 0.5 * 4, 4.0, 0.0]
    assert discounted_returns(rewards, 0.5, bootstrap=8.0).tolist()[-2:] == [4.0 + 0.5 * 8, 8.0]


class OracleModel:
    """Encodes frame t (its pixel value is t) as z = t; its value is `value(t)`."""

    history = 1
    has_novelty = False

    def __init__(self, value):
        self._value = value

    def eval(self):
        return self

    def encode_sequence(self, frames):  # (B, S, 3, H, W) uint8 -> (B, S, 1)
        return frames[:, :, 0, 0, 0].float()[..., None]

    def value(self, z, optimism=0.0):  # (N, 1) -> (N,)
        return self._value(z[:, 0])


def _episode(rewards, terminated_at_end):
    n = len(rewards)
    obs = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, 2, 2).clone()
    ended = torch.zeros(n, dtype=torch.bool)
    ended[-1] = terminated_at_end
    return TensorDict({"obs": obs, "reward": torch.tensor(rewards), "terminated": ended}, batch_size=[n])


@pytest.mark.parametrize("terminated", [True, False])
def test_a_value_equal_to_the_return_scores_perfectly_and_a_biased_one_shows_its_bias(terminated):
    rewards = [0.0, 3.0, 1.0, 0.0, 2.0, 5.0]
    episode = _episode(rewards, terminated)
    tail = 0.0 if terminated else 7.0  # the value of the last state stands in for what a time limit cut off
    truth = discounted_returns(torch.tensor(rewards), 0.9, tail)
    oracle = OracleModel(lambda t: torch.where(t == len(rewards) - 1, torch.tensor(tail), truth[t.long()]))
    check = value_on_episodes(oracle, "cpu", [episode, episode], 0.9)
    assert check["steps"] == 2 * (len(rewards) - 1) and check["episodes"] == 2
    assert check["corr"] == pytest.approx(1.0) and check["r2"] == pytest.approx(1.0) and check["bias"] == pytest.approx(0.0)
    if terminated:  # (cut by a time limit, a doubled value would double its own bootstrap too)
        check = value_on_episodes(OracleModel(lambda t: 2 * truth[t.long()]), "cpu", [episode], 0.9)
        assert check["corr"] == pytest.approx(1.0) and check["bias"] == pytest.approx(1.0) and check["r2"] < 1.0


def test_a_constant_value_ranks_nothing_and_episodes_without_rewards_are_skipped():
    episode = _episode([0.0, 1.0, 0.0, 1.0], True)
    check = value_on_episodes(OracleModel(lambda t: torch.zeros_like(t)), "cpu", [episode], 0.9)
    assert check["corr"] == 0.0 and check["r2"] < 0 and check["bias"] == pytest.approx(-1.0)
    no_rewards = TensorDict({"obs": episode["obs"]}, batch_size=[4])
    assert value_on_episodes(OracleModel(lambda t: t), "cpu", [no_rewards], 0.9) is None


class RewardModel(OracleModel):
    """OracleModel whose reward head predicts `reward(z, action)` for the step from z."""

    def __init__(self, reward):
        super().__init__(lambda t: torch.zeros_like(t))
        self._reward = reward

    def transition(self, z, action):  # (N, 1), (N, A) -> latent, reward (N,), termination (N,)
        r = self._reward(z[:, 0], action[:, 0])
        return z, r, torch.zeros_like(r)


def _acted(rewards, actions):
    episode = _episode(rewards, False)
    episode["action"] = torch.tensor(actions, dtype=torch.float32)[:, None]
    return episode


def test_the_reward_check_pairs_each_step_with_the_action_that_led_to_it():
    rewards = [0.0, 1.0, 4.0, 2.0, 0.5]  # reward t came from taking action t in frame t - 1
    actions = [0.0, 1.0, 4.0, 2.0, 0.5]
    episode = _acted(rewards, actions)
    exact = reward_on_episodes(RewardModel(lambda t, a: a), "cpu", [episode])
    assert exact["steps"] == 4 and exact["corr"] == pytest.approx(1.0) and exact["r2"] == pytest.approx(1.0)
    assert exact["bias"] == pytest.approx(0.0) and exact["bias_top"] == pytest.approx(0.0)
    # off by one step (the action of the frame, not the one that led on) would not score perfectly
    shifted = reward_on_episodes(RewardModel(lambda t, a: torch.tensor(actions)[t.long()]), "cpu", [episode])
    assert shifted["r2"] < 0.5
    # a head that halves every reward: correlated, biased by -1/2 overall and on the best quarter
    halved = reward_on_episodes(RewardModel(lambda t, a: a / 2), "cpu", [episode])
    assert halved["corr"] == pytest.approx(1.0) and halved["bias"] == pytest.approx(-0.5)
    assert halved["bias_top"] == pytest.approx(-0.5)
    # one that only misses the best transition shows it in bias_top far more than overall
    capped = reward_on_episodes(RewardModel(lambda t, a: a.clamp(max=2.0)), "cpu", [episode])
    assert capped["bias_top"] == pytest.approx(-0.5) and capped["bias"] == pytest.approx(-0.5 / 1.875)
    without_actions = _episode(rewards, False)
    assert reward_on_episodes(RewardModel(lambda t, a: a), "cpu", [without_actions]) is None


def test_agreement_and_state_summary():
    actual = torch.tensor([1.0, 2.0, 3.0])
    assert agreement(actual, actual) == {"corr": pytest.approx(1.0), "r2": pytest.approx(1.0), "bias": 0.0}
    constant = agreement(torch.full((3,), 2.0), actual)
    assert constant["corr"] == 0.0 and constant["r2"] == pytest.approx(0.0) and constant["bias"] == pytest.approx(0.0)
    episode = _episode([0.0, 1.0], False)
    assert state_on_episodes([episode]) is None
    episode["state"] = torch.tensor([[1.0, -2.0], [3.0, -2.0]])
    summary = state_on_episodes([episode, episode])
    assert summary["mean"] == [2.0, -2.0] and summary["std"][1] == 0.0 and summary["steps"] == 4


def test_checks_from_precomputed_beliefs_match_their_own():
    episode = _acted([0.0, 1.0, 4.0, 2.0, 0.5], [0.0, 1.0, 4.0, 2.0, 0.5])
    model = RewardModel(lambda t, a: a / 2)
    beliefs = [beliefs_on_episode(model, "cpu", episode, 0.9)]
    assert reward_on_episodes(model, "cpu", [episode], beliefs) == reward_on_episodes(model, "cpu", [episode])
    assert value_on_episodes(model, "cpu", [episode], 0.9, beliefs) == value_on_episodes(model, "cpu", [episode], 0.9)
