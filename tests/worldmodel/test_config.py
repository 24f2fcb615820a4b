import dataclasses
import json

import pytest

from worldmodel.cli import parse_cli, parse_overrides
from worldmodel.config import PRESET_TASKS, PRESETS, Config, ConfigError, field_docs


def test_presets_exist_and_differ():
    assert {"debug", "cpu", "gpu"} <= set(PRESETS)
    debug, cpu = Config.from_preset("debug"), Config.from_preset("cpu")
    assert debug.steps < cpu.steps and debug.preset == "debug"
    assert Config() == cpu.replace(preset="cpu")


def test_a_preset_s_values_for_one_task_are_valid_keys_and_named_in_the_help():
    from worldmodel.cli import help_text

    for preset, tasks in PRESET_TASKS.items():
        assert preset in PRESETS
        for env_id, values in tasks.items():
            cfg = Config.from_preset(preset, env=env_id)  # an unknown key or bad value raises here
            assert {key: getattr(cfg, key) for key in values} == values
            assert f"{preset} on {env_id}:" in help_text("train.py")


def test_overrides_are_typed():
    cfg = parse_overrides(["preset=debug", "env=CartPole-v1", "seed=3", "updates_per_step=0.5",
                           "tensorboard=false", "steps=1_000", "run_dir=runs/x"])
    assert cfg.env == "CartPole-v1" and cfg.seed == 3 and cfg.steps == 1000
    assert cfg.updates_per_step == 0.5 and cfg.tensorboard is False and cfg.run_dir == "runs/x"
    assert cfg.batch_size == PRESETS["debug"]["batch_size"]  # preset applied under the overrides


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().seed = 4  # type: ignore[misc]


@pytest.mark.parametrize("args,match", [
    (["sed=3"], r"Unknown config key 'sed'\. Did you mean seed"),
    (["seed=three"], "not a number"),
    (["seed=1.5"], "whole number"),
    (["precision=fp8"], "choose one of auto, fp32, bf16, fp16"),
    (["preset=huge"], "Unknown preset 'huge'"),
    (["tensorboard=maybe"], "not a boolean"),
    (["steps=0"], "at least 1"),
    (["device=tpu"], "device='tpu'"),
    (["device=mps"], "device='mps'"),
    (["buffer_on_disk=true", "replay_device=cuda"], "drop replay_device=cuda"),
    (["precision=fp16", "device=cpu"], "fp16 needs CUDA"),
    (["resume=true"], "needs run_dir"),
    (["justaword"], "not key=value"),
    (["q_steps=3"], "value_of=policy"),
    (["optimism=1"], "Set value_of=policy or drop optimism"),
    (["value_of=policy", "optimism=-0.5"], "must be 0 \\(off\\) or more"),
    (["novelty=-1"], "bonus for unfamiliar latents"),
    (["value_of=policy", "q_steps=16"], r"q_steps=16 must be in \[1, seq_len=16\)"),
    (["stack_as=differences", "history=1"], "history=1 stacks one frame"),
    (["reward_bins=1"], r"reward_bins=1 must be 0 \(regress the symlog reward\) or at least 2"),
    (["value_bins=-3"], r"value_bins=-3 must be 0 \(regress the symlog value\) or at least 2"),
    (["reward_head=separate"], "choose one of shared, mlp"),
    (["appearance=conv", "appearance_share=0"], r"appearance_share=0.0 must be in \(0, 1\]"),
    (["appearance_share=0.5"], "but appearance=none: add appearance=jitter, conv or remap"),
])
def test_bad_input_is_one_clear_error(args, match):
    with pytest.raises(ConfigError, match=match):
        parse_overrides(args)


def test_cli_exits_2_naming_the_key_and_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_cli(["colour=red"], prog="train.py")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "colour" in err and "Valid keys:" in err and "seed" in err and "Traceback" not in err


def test_help_lists_every_field_with_its_doc(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_cli(["help"], prog="train.py")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    docs = field_docs()
    for name in Config.__dataclass_fields__:
        assert name in docs, f"field {name} has no docstring"
        assert f"{name}=" in out


def test_save_load_round_trip_and_unknown_saved_key(tmp_path):
    cfg = Config.from_preset("debug", env="Acrobot-v1", seed=9)
    cfg.save(tmp_path / "c.json")
    assert Config.load(tmp_path / "c.json") == cfg
    data = json.loads((tmp_path / "c.json").read_text())
    data["mystery"] = 1
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="mystery"):
        Config.load(tmp_path / "c.json")


def test_a_saved_config_that_predates_act_from_keeps_the_mean_action(tmp_path):
    values = Config().to_dict()
    del values["act_from"]
    (tmp_path / "old.json").write_text(json.dumps(values))
    assert Config.load(tmp_path / "old.json").act_from == "mean"
    Config().save(tmp_path / "new.json")
    assert Config.load(tmp_path / "new.json").act_from == Config().act_from == "elite"
