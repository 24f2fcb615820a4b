"""The one assembly: config resolution (suite protocols, resume rules), parts built for the env's
action space, and a run folder loaded back whatever its kind."""

import pytest
import torch

from agents.training.assembly import (
    RESUMABLE,
    build_agent,
    build_model,
    build_trainer,
    load_run,
    resolve_config,
)
from agents.training.runs import ONLINE, PRETRAIN, RunDir
from envs import PLANET_ACTION_REPEAT, UnknownEnvError, resolve_id, suite_defaults
from worldmodel.actions import ActionSpec
from worldmodel.config import Config, ConfigError


@pytest.mark.parametrize("env_id,repeat", sorted(PLANET_ACTION_REPEAT.items()))
def test_a_planet_task_gets_its_own_action_repeat(env_id, repeat):
    assert resolve_config(["preset=debug", f"env={env_id}"]).action_repeat == repeat


def test_an_explicit_action_repeat_wins_over_the_protocol():
    cfg = resolve_config(["preset=debug", "env=dm_control/cartpole-swingup-v0", "action_repeat=4"])
    assert cfg.action_repeat == 4


def test_other_dmc_tasks_get_the_suite_default_with_a_note(capsys):
    assert resolve_config(["preset=debug", "env=dm_control/hopper-hop-v0"]).action_repeat == 2
    assert "not one of the PlaNet" in capsys.readouterr().err


def test_classic_control_keeps_the_preset():
    assert suite_defaults("Pendulum-v1") == ({}, None)
    assert resolve_config(["preset=debug", "env=Pendulum-v1"]).action_repeat == Config.from_preset("debug").action_repeat


def test_the_dmc_preset_is_the_planet_budget():
    cfg = resolve_config(["preset=dmc", "env=dm_control/walker-walk-v0"])
    assert (cfg.steps, cfg.eval_every, cfg.eval_episodes, cfg.action_repeat) == (100_000, 10_000, 10, 2)


def test_the_dmc_preset_makes_one_update_per_step_on_cartpole_swingup_and_reacher_easy_alone():
    """Their per-task value (measured there: docs/results.md); the other tasks keep the preset's 0.5,
    other presets are untouched, an explicit value wins."""
    resolved = {env_id: resolve_config(["preset=dmc", f"env={env_id}"]).updates_per_step for env_id in PLANET_ACTION_REPEAT}
    assert resolved.pop("dm_control/cartpole-swingup-v0") == resolved.pop("dm_control/reacher-easy-v0") == 1.0
    assert set(resolved.values()) == {0.5}
    assert resolve_config(["preset=dmc", "env=dm_control/cartpole-swingup-v0", "updates_per_step=0.5"]).updates_per_step == 0.5
    assert resolve_config(["preset=cpu", "env=dm_control/cartpole-swingup-v0"]).updates_per_step == 0.5


def test_a_misspelled_dmc_task_is_refused_with_the_closest_ids():
    pytest.importorskip("shimmy")
    with pytest.raises(UnknownEnvError, match="dm_control/cartpole-swingup-v0"):
        resolve_id("dm_control/cartpole-swingup-v1")


@pytest.mark.parametrize("spec", [ActionSpec("discrete", 2), ActionSpec("continuous", 3)])
def test_parts_are_built_for_the_env_s_action_space(spec):
    cfg = Config.from_preset("debug")
    model = build_model(cfg, spec, torch.device("cpu"))
    agent = build_agent(cfg, model, build_trainer(cfg, model, torch.device("cpu")), torch.device("cpu"), seed=0)
    assert model.action_spec == spec
    action = agent.act(torch.zeros(2, 3, cfg.image_size, cfg.image_size, dtype=torch.uint8), eval=True)
    assert action.shape == (2, spec.dim)


def test_resume_may_change_only_the_resumable_keys(tmp_path):
    cfg = Config.from_preset("debug", run_dir=str(tmp_path / "run"))
    RunDir.create(cfg).unlock()
    args = [f"run_dir={cfg.run_dir}", "resume=true"]
    assert resolve_config([*args, "steps=999"]).steps == 999
    assert resolve_config([*args, f"lr={cfg.lr}"]).lr == cfg.lr  # the value it has is no change
    with pytest.raises(ConfigError, match="lr=0.5"):
        resolve_config([*args, "lr=0.5"])
    assert "steps" in RESUMABLE and "lr" not in RESUMABLE


@pytest.mark.parametrize("kind", [ONLINE, PRETRAIN])
def test_load_run_reads_both_kinds_of_checkpoint(tmp_path, kind):
    cfg = Config.from_preset("debug", run_dir=str(tmp_path / "run"))
    run = RunDir.create(cfg)
    spec = ActionSpec("continuous", 1)
    model = build_model(cfg, spec, torch.device("cpu"))
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    trainer = build_trainer(cfg, model, torch.device("cpu"))
    agent = build_agent(cfg, model, trainer, torch.device("cpu"), seed=0)
    state = {"config": cfg.to_dict(), "env": cfg.env}
    state.update({"agent": agent.state_dict()} if kind == ONLINE else {"trainer": trainer.state_dict()})
    run.save_checkpoint(10, state, kind)
    run.unlock()
    loaded = load_run(run.path)
    assert loaded.kind == kind and loaded.checkpoint.name == "step_000000010"
    assert torch.equal(next(loaded.model.parameters()), next(model.parameters()))
    if kind == ONLINE:  # the same agent may plan differently; what it learned may not change
        wider = load_run(run.path, plan={"samples": 32, "horizon": 2})
        assert (wider.cfg.samples, wider.cfg.horizon) == (32, 2)
        assert torch.equal(next(wider.model.parameters()), next(model.parameters()))
        with pytest.raises(ConfigError, match="only the planner's keys"):
            load_run(run.path, plan={"latent_dim": 8})
