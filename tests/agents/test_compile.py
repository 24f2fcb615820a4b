"""`compile=true`: the compiled world-model update and planner match eager and never recompile
after warm-up. Slow (compiling takes minutes on 2 cores), so never run on CI."""

import os

import einops
import numpy as np
import pytest
import torch
import torch._dynamo

from agents.agent import PlanningAgent
from agents.planners import make_planner
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
from worldmodel.model import WorldModel
from worldmodel.replay import SequenceReplay
from worldmodel.trainer import WorldModelTrainer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CI") == "true", reason="torch.compile takes minutes on CI's 2 cores"),
]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """No graphs from earlier tests, and einops as in a fresh process (its per-type backend cache,
    which dynamo guards on, empty)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    einops._backends._type2backend.clear()
    yield
    torch._dynamo.reset()


def make_cfg(**overrides) -> Config:
    return Config.from_preset("debug", compile=True, image_size=32, enc_stem=2, **overrides)


def replay_batches(cfg: Config, count: int) -> list:
    rng = np.random.default_rng(0)
    replay = SequenceReplay(500, cfg.sample_len, (3, cfg.image_size, cfg.image_size), 1)
    for t in range(60):
        replay.add(rng.integers(0, 255, (1, 3, cfg.image_size, cfg.image_size), dtype=np.uint8),
                   rng.uniform(-1, 1, (1, 1)), rng.normal(size=1), np.zeros(1), np.zeros(1), np.array([t % 30 == 0]))
    torch.manual_seed(0)
    return [replay.sample(cfg.batch_size) for _ in range(count)]


def make_trainer(cfg: Config) -> WorldModelTrainer:
    torch.manual_seed(0)
    model = WorldModel(cfg, 1)
    return WorldModelTrainer(model, torch.device("cpu"), cfg.precision, cfg.lr, cfg.grad_clip)


def frames_compiled() -> int:
    """Frames dynamo has compiled so far (one per graph built, recompiles included)."""
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def test_compiled_update_matches_eager_and_does_not_recompile():
    cfg = make_cfg()
    batches = replay_batches(cfg, 4)
    eager, compiled = make_trainer(cfg), make_trainer(cfg)
    compiled.compile()
    # Inductor draws its own random numbers (the masks) unless told to use eager's kernels.
    with torch._inductor.config.patch(fallback_random=True):
        for i, batch in enumerate(batches):
            torch.manual_seed(100 + i)
            got = compiled.update(batch)  # first: nothing eager has run in this "process" yet
            torch.manual_seed(100 + i)
            want = eager.update(batch)
            assert np.isfinite(got["loss/total"])
            assert got["loss/total"] == pytest.approx(want["loss/total"], rel=1e-3, abs=1e-4)
            assert ("compile/update_seconds" in got) == (i == 0)
            if i == 0:
                assert got["compile/update_seconds"] > 0
                graphs = frames_compiled()
                assert graphs == 1  # the loss is one graph: no graph break
    assert frames_compiled() == graphs  # steps 2..4: no new graph, no recompile
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled.update(batches[0])


@pytest.mark.parametrize("discrete", [False, True])
def test_compiled_planner_matches_eager_with_one_graph_per_batch_size(discrete):
    cfg = make_cfg()
    torch.manual_seed(0)
    spec = ActionSpec("discrete", 3) if discrete else ActionSpec("continuous", 2)
    model = WorldModel(cfg, spec).eval()
    eager, compiled = make_planner(cfg.replace(compile=False), model), make_planner(cfg, model)
    assert compiled.compiled and not eager.compiled
    z = torch.randn(3, cfg.latent_dim)
    for n in (3, 1, 3, 1):  # training envs, then the evaluation env, alternating
        want, want_plan = eager.plan(z[:n], generator=torch.Generator().manual_seed(n))
        got, got_plan = compiled.plan(z[:n], generator=torch.Generator().manual_seed(n))
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got_plan.mean, want_plan.mean, atol=1e-4, rtol=1e-4)
    assert set(compiled.compile_seconds) == {1, 3}
    graphs = frames_compiled()
    assert compiled.policy_samples > 0
    assert graphs == 4  # per batch size: the candidates' scoring and the policy prior's proposals
    with torch._dynamo.config.patch(error_on_recompile=True):
        for n in (3, 1, 3):
            compiled.plan(z[:n], generator=torch.Generator().manual_seed(0))
    assert frames_compiled() == graphs


def test_agent_reports_the_planner_compile_time_once():
    cfg = make_cfg()
    torch.manual_seed(0)
    model = WorldModel(cfg, 1)
    trainer = WorldModelTrainer(model, torch.device("cpu"), cfg.precision, cfg.lr, cfg.grad_clip)
    agent = PlanningAgent(cfg, model, trainer, torch.device("cpu"), seed=0)
    batch = replay_batches(cfg, 1)[0]
    agent.act(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    first = agent.update(batch)
    agent.act(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    second = agent.update(batch)
    assert first["compile/plan_seconds_n2"] > 0 and "compile/plan_seconds_n2" not in second


def test_compile_wraps_whatever_forward_is_in_either_order():
    class Wrapper(torch.nn.Module):  # stands in for DistributedDataParallel(model)
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, batch):
            return self.module(batch)

    for compile_first in (True, False):
        trainer = make_trainer(make_cfg())
        wrapper = Wrapper(trainer.model)
        if compile_first:
            trainer.compile()
        trainer.forward = wrapper
        if not compile_first:
            trainer.compile()
        assert isinstance(trainer.forward, torch._dynamo.eval_frame.OptimizedModule)
        assert trainer.forward._orig_mod is wrapper  # compiled around the wrapper, not under it
