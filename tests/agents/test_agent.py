import torch

from agents.agent import PlanningAgent
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
from worldmodel.model import WorldModel


def make_agent(discrete: bool = False) -> PlanningAgent:
    torch.manual_seed(0)
    cfg = Config.from_preset("debug", image_size=32, enc_stem=2, history=3)
    spec = ActionSpec("discrete", 3) if discrete else ActionSpec("continuous", 2)
    return PlanningAgent(cfg, WorldModel(cfg, spec), None, torch.device("cpu"), seed=0)


def frames(n: int, value: int) -> torch.Tensor:
    return torch.full((n, 3, 32, 32), value, dtype=torch.uint8)


def test_acts_for_all_envs_within_bounds():
    agent = make_agent()
    action = agent.act(torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8))
    assert action.shape == (4, 2) and action.abs().max() <= 1
    discrete = make_agent(discrete=True).act(frames(2, 7))
    assert discrete.shape == (2, 3) and torch.all(discrete.sum(-1) == 1)


def test_reset_refills_the_frame_window_of_new_episodes_only():
    agent = make_agent()
    agent.act(frames(2, 1))
    agent.act(frames(2, 2))
    agent.reset(torch.tensor([False, True]))
    agent.act(frames(2, 3))
    window = agent._memory[False].frames.window  # (n, k, 3, H, W)
    assert window[0, :, 0, 0, 0].tolist() == [1, 2, 3]  # env 0 continues its episode
    assert window[1, :, 0, 0, 0].tolist() == [3, 3, 3]  # env 1 starts over from its first frame


def test_evaluation_memory_is_separate_and_seeded_plans_repeat():
    agent = make_agent()
    agent.act(frames(2, 1))
    agent.act(frames(1, 9), eval=True)
    assert agent._memory[False].frames.window[0, -1, 0, 0, 0] == 1
    a = make_agent().act(frames(1, 5), eval=True)
    b = make_agent().act(frames(1, 5), eval=True)
    assert torch.equal(a, b)
