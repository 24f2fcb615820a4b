import pytest
import torch
from batches import batch_for

from agents.agent import PlanningAgent, stream_seed
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
from worldmodel.model import WorldModel
from worldmodel.trainer import WorldModelTrainer


def make_agent(discrete: bool = False, trained: bool = False, seed: int = 0) -> PlanningAgent:
    torch.manual_seed(0)
    cfg = Config.from_preset("debug", image_size=32, enc_stem=2, history=3)
    spec = ActionSpec("discrete", 3) if discrete else ActionSpec("continuous", 2)
    model = WorldModel(cfg, spec)
    trainer = WorldModelTrainer(model, torch.device("cpu"), cfg.precision, cfg.lr, cfg.grad_clip) if trained else None
    return PlanningAgent(cfg, model, trainer, torch.device("cpu"), seed=seed)


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


def test_reset_forgets_the_plan_of_new_episodes_only():
    agent = make_agent()
    warm_starts = []
    plan = agent.planner.plan

    def recording(z, warm=None, **kw):
        warm_starts.append(warm)
        return plan(z, warm, **kw)

    agent.planner.plan = recording
    agent.act(frames(2, 1))
    kept = agent._memory[False].plan  # the shifted plan the next call starts from
    agent.reset(torch.tensor([False, True]))
    agent.act(frames(2, 2))
    warm = warm_starts[-1]
    assert warm_starts[0] is None
    torch.testing.assert_close(warm.mean[0], kept.mean[0])  # env 0 continues from its own plan
    assert torch.all(warm.mean[1] == 0) and torch.all(warm.std[1] == agent.planner.max_std)  # env 1 starts afresh


def test_evaluation_memory_is_separate_and_seeded_plans_repeat():
    agent = make_agent()
    agent.act(frames(2, 1))
    agent.act(frames(1, 9), eval=True)
    assert agent._memory[False].frames.window[0, -1, 0, 0, 0] == 1
    a = make_agent().act(frames(1, 5), eval=True)
    b = make_agent().act(frames(1, 5), eval=True)
    assert torch.equal(a, b)


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("eval", [False, True])
def test_an_env_acts_the_same_alone_or_batched_with_others(discrete, eval):
    batched, alone, other = make_agent(discrete), make_agent(discrete), make_agent(discrete)
    for step in range(3):  # warm starts and streams carry over from step to step
        a, b = frames(1, 10 + step), frames(1, 100 + step)
        both = batched.act(torch.cat([a, b]), eval=eval)
        torch.testing.assert_close(alone.act(a, eval=eval), both[:1], atol=1e-5, rtol=1e-5)
        # Env 1's part equals one env planned alone from env 1's stream (the agent's streams are
        # per env index, so a lone agent would use env 0's).
        if step == 0:
            stack = b.repeat(1, other.cfg.history, 1, 1)  # a first frame fills the whole window
            z = other.model.eval().encode(stack)
            gen = [torch.Generator().manual_seed(stream_seed(0, 1, eval))]
            single, _ = other.planner.plan(z, eval=eval, generator=gen)
            torch.testing.assert_close(single, both[1:], atol=1e-5, rtol=1e-5)


def test_planning_streams_are_per_env_memory_and_seed():
    seeds = {stream_seed(s, env, eval) for s in (0, 1) for env in range(4) for eval in (False, True)}
    assert len(seeds) == 16 and stream_seed(0, 1, False) == stream_seed(0, 1, False)
    agent = make_agent()
    train, evals = agent.generators(3), agent.generators(2, eval=True)
    assert agent.generators(2) == train[:2]  # the same objects: streams persist across batch sizes
    draws = [torch.rand(4, generator=g) for g in train + evals]
    assert len({tuple(d.tolist()) for d in draws}) == 5


def test_state_dict_restores_every_planning_stream_exactly():
    agent = make_agent(trained=True)
    for seed in range(2):  # the weights and the optimiser move away from the shared initial ones
        agent.update(batch_for(agent.cfg, action_dim=2, seed=seed))
    obs = torch.cat([frames(1, 3), frames(1, 200)])
    agent.act(obs)
    agent.act(obs)
    agent.act(frames(1, 9), eval=True)
    state = agent.state_dict()
    assert len(state["generators"]["train"]) == 2 and len(state["generators"]["eval"]) == 1
    restored = make_agent(trained=True, seed=123)  # the seed is overridden by the saved streams
    restored.load_state_dict(state)
    for mine, theirs in zip(agent.model.state_dict().values(), restored.model.state_dict().values()):
        assert torch.equal(mine, theirs)
    assert restored.trainer.steps == 2 and restored.trainer.optimizer.state_dict()["state"]
    agent.reset(torch.ones(2, dtype=torch.bool))
    agent.reset(torch.ones(1, dtype=torch.bool), eval=True)
    for _ in range(2):
        assert torch.equal(agent.act(obs), restored.act(obs))
        assert torch.equal(agent.act(frames(1, 9), eval=True), restored.act(frames(1, 9), eval=True))


def test_eval_streams_put_back_repeat_the_evaluation_noise_and_leave_training_alone():
    agent = make_agent()
    obs = torch.cat([frames(1, 3), frames(1, 200)])
    agent.act(obs, eval=True)  # the streams have moved on from their seeds
    train_before = [g.get_state() for g in agent.generators(1)]
    start = agent.eval_streams()

    def evaluation() -> torch.Tensor:
        agent.reset(torch.ones(2, dtype=torch.bool), eval=True)
        return torch.stack([agent.act(obs, eval=True) for _ in range(3)])

    first = evaluation()
    after = agent.eval_streams()
    assert not torch.equal(evaluation(), first)  # without putting them back the noise differs
    agent.set_eval_streams(start)
    assert torch.equal(evaluation(), first)  # the same noise: a paired second evaluation
    agent.set_eval_streams(after)
    assert all(torch.equal(a.get_state(), b) for a, b in zip(agent.generators(2, eval=True), after))
    assert all(torch.equal(g.get_state(), s) for g, s in zip(agent.generators(1), train_before))
    fresh = make_agent()
    fresh.set_eval_streams([])  # before any evaluation: the streams start again from their seeds
    assert torch.equal(fresh.act(obs, eval=True), make_agent().act(obs, eval=True))


def test_training_acting_plays_evaluations_from_the_training_memory_with_noise():
    from agents.episodes import TrainingActing

    agent = make_agent()
    acting = TrainingActing(agent)
    acting.reset(torch.ones(1, dtype=torch.bool), eval=True)
    noisy = acting.act(frames(1, 7), eval=True)
    assert set(agent._memory) == {False}  # the training memory and streams, not the evaluation's
    assert acting.cfg is agent.cfg and acting.model is agent.model
    assert torch.equal(noisy, make_agent().act(frames(1, 7), eval=False))


def test_a_checkpoint_with_one_generator_still_loads():
    agent = make_agent(trained=True)
    old = torch.Generator().manual_seed(42)
    agent.load_state_dict({"trainer": agent.trainer.state_dict(), "generator": old.get_state()})
    assert torch.equal(agent.generators(1)[0].get_state(), old.get_state())
    assert agent.generators(1, eval=True)[0].initial_seed() == stream_seed(0, 0, True)
