"""Transfer: loading a pretrained encoder from each kind of source, the three encoder modes, mismatches."""

import pytest
import torch
from batches import SIZE, batch_for  # tests/batches.py

from agents.training.pretrained import (
    adopt_encoder_config,
    encoder_lr,
    load_pretrained_encoder,
    transfer_into,
)
from agents.training.runs import ONLINE, RunDir
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError, save_checkpoint
from worldmodel.config import Config, ConfigError
from worldmodel.model import WorldModel
from worldmodel.trainer import WorldModelTrainer

SMALL = dict(image_size=SIZE, enc_stem=2, enc_depth=2, batch_size=4, seq_len=6, model_horizon=3)


@pytest.fixture
def source(tmp_path):
    """A continuous-action world model (the 'source' env) saved every way a user may hand it over."""
    cfg = Config.from_preset("debug", env="Pendulum-v1", seed=1, **SMALL)
    torch.manual_seed(1)
    model = WorldModel(cfg, ActionSpec("continuous", 1))
    model.save(tmp_path / "world_model.pt")
    model.save_encoder(tmp_path / "encoder.pt")
    run = RunDir.create(cfg.replace(run_dir=str(tmp_path / "run")))
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", 1e-3, 10.0)
    run.save_checkpoint(100, {"config": cfg.to_dict(), "env": cfg.env, "agent": {"trainer": trainer.state_dict()}},
                        ONLINE)
    return model, tmp_path


def encoder_state(model: WorldModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model._encoder.state_dict().items()}


@pytest.mark.parametrize("where", ["world_model.pt", "encoder.pt", "run", "run/checkpoints/step_000000100"])
def test_every_kind_of_source_gives_the_same_weights(source, where):
    model, root = source
    pretrained = load_pretrained_encoder(root / where)
    expected = encoder_state(model)
    assert pretrained.state_dict.keys() == expected.keys()
    assert all(torch.equal(pretrained.state_dict[k], expected[k]) for k in expected)
    assert pretrained.config["latent_dim"] == model.cfg.latent_dim
    if where.startswith("run"):
        assert pretrained.env == "Pendulum-v1"


def test_discrete_target_gets_the_encoder_and_fresh_heads(source):
    model, root = source
    pretrained = load_pretrained_encoder(root / "run")
    cfg = adopt_encoder_config(Config.from_preset("cpu", env="CartPole-v1", seq_len=6), pretrained)
    assert cfg.latent_dim == model.cfg.latent_dim and cfg.history == model.cfg.history
    assert cfg.hidden_dim == Config.from_preset("cpu").hidden_dim  # only the encoder's keys move
    target = WorldModel(cfg, ActionSpec("discrete", 2))
    transfer_into(target, pretrained)
    assert all(torch.equal(a, b) for a, b in zip(target._encoder.parameters(), model._encoder.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(target._target_encoder.parameters(), model._encoder.parameters()))
    assert target.action_spec.kind == "discrete" and target.action_dim == 2


def _train(cfg: Config, pretrained, steps: int = 3):
    torch.manual_seed(0)
    model = WorldModel(cfg, ActionSpec("discrete", 2))
    transfer_into(model, pretrained)
    before = encoder_state(model)
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip, encoder_lr=encoder_lr(cfg))
    for step in range(steps):
        trainer.update(batch_for(cfg, action_dim=2, discrete=True, seed=step))
    return model, trainer, before


def test_a_run_says_which_shape_keys_its_encoder_sets(source, capsys):
    from agents.training.assembly import resolve_config

    _, root = source  # a debug-preset encoder: SMALL's shape
    cfg = resolve_config(["preset=debug", "env=CartPole-v1", f"encoder_from={root / 'encoder.pt'}"])
    assert (cfg.image_size, cfg.enc_depth) == (SIZE, 2)
    err = capsys.readouterr().err
    assert f"sets image_size={SIZE} (the preset has {Config.from_preset('debug').image_size})" in err
    assert "enc_stem=2" in err and "enc_depth" not in err and "history" not in err  # only the keys that moved
    resolve_config(["preset=debug", "env=CartPole-v1", f"encoder_from={root / 'encoder.pt'}", *(
        f"{k}={v}" for k, v in SMALL.items() if k in ("image_size", "enc_stem", "enc_depth"))])
    assert "sets" not in capsys.readouterr().err  # nothing to say when the keys already agree


def test_frozen_encoder_stays_bit_identical(source):
    _, root = source
    pretrained = load_pretrained_encoder(root / "encoder.pt")
    cfg = adopt_encoder_config(Config.from_preset("debug", env="CartPole-v1", encoder_from="x",
                                                  encoder_mode="frozen", **SMALL), pretrained)
    model, trainer, before = _train(cfg, pretrained)
    after = model._encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(a, b) for a, b in zip(model._target_encoder.parameters(), model._encoder.parameters()))
    assert len(trainer.optimizer.param_groups) == 1  # the encoder is not even in the optimiser
    dynamics = list(model._dynamics.parameters())[0]
    assert dynamics.requires_grad


def test_finetune_moves_the_encoder_at_its_own_learning_rate(source):
    _, root = source
    pretrained = load_pretrained_encoder(root / "encoder.pt")
    cfg = adopt_encoder_config(Config.from_preset("debug", env="CartPole-v1", encoder_from="x",
                                                  encoder_mode="finetune", encoder_lr_scale=0.1, lr=1e-3, **SMALL), pretrained)
    assert encoder_lr(cfg) == pytest.approx(1e-4)
    model, trainer, before = _train(cfg, pretrained)
    lrs = sorted(group["lr"] for group in trainer.optimizer.param_groups)
    assert lrs == pytest.approx([1e-4, 1e-3])
    after = model._encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # Adam's first steps move each weight by about its learning rate: the encoder's ~10x less.
    first = next(iter(before))
    moved = (after[first] - before[first]).abs().max()
    assert 0 < moved < 5e-4


@pytest.mark.parametrize("encoder", ["conv", "patch"])
def test_partial_finetuning_keeps_the_first_layers_bit_identical(source, encoder, tmp_path):
    if encoder == "conv":
        _, root = source
        pretrained = load_pretrained_encoder(root / "encoder.pt")
    else:
        cfg = Config.from_preset("debug", encoder="patch", patch_size=8, vit_depth=2, **SMALL)
        WorldModel(cfg, ActionSpec("continuous", 1)).save_encoder(tmp_path / "patch.pt")
        pretrained = load_pretrained_encoder(tmp_path / "patch.pt")
    cfg = adopt_encoder_config(Config.from_preset("debug", env="CartPole-v1", encoder_from="x", encoder_mode="finetune",
                                                  encoder_frozen_layers=2, **SMALL), pretrained)
    torch.manual_seed(0)
    model = WorldModel(cfg, ActionSpec("discrete", 2))
    transfer_into(model, pretrained)
    model.freeze_encoder_layers(cfg.encoder_frozen_layers)  # what build_model does for such a config
    layers = [[p.detach().clone() for p in params] for params in model._encoder.layers()]
    trainer = WorldModelTrainer(model, torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip, encoder_lr=encoder_lr(cfg))
    for step in range(3):
        trainer.update(batch_for(cfg, action_dim=2, discrete=True, seed=step))
    after = model._encoder.layers()
    assert all(torch.equal(a, b) for before, now in zip(layers[:2], after[:2]) for a, b in zip(before, now))
    assert any(not torch.equal(a, b) for before, now in zip(layers[2:], after[2:]) for a, b in zip(before, now))
    frozen = {id(p) for params in after[:2] for p in params}
    assert not any(id(p) in frozen for g in trainer.optimizer.param_groups for p in g["params"])
    with pytest.raises(ConfigError, match=f"has {len(after)} layers, so freeze at most {len(after) - 1}"):
        model.freeze_encoder_layers(len(after))


def test_partial_finetuning_needs_a_transferred_encoder_that_trains():
    with pytest.raises(ConfigError, match="needs encoder_from= with encoder_mode=finetune or init"):
        Config.from_preset("debug", encoder_frozen_layers=1)
    with pytest.raises(ConfigError, match="encoder_mode=frozen freezes all"):
        Config.from_preset("debug", encoder_from="x", encoder_mode="frozen", encoder_frozen_layers=1)


def test_modes_map_to_learning_rates():
    base = Config.from_preset("debug", lr=2e-3)
    assert encoder_lr(base) is None  # no transfer: one learning rate
    assert encoder_lr(base.replace(encoder_from="x", encoder_mode="init")) is None
    assert encoder_lr(base.replace(encoder_from="x", encoder_mode="frozen")) == 0.0
    assert encoder_lr(base.replace(encoder_from="x", encoder_mode="finetune", encoder_lr_scale=0.5)) == 1e-3


@pytest.mark.parametrize("key, value", [("image_size", 64), ("history", 3), ("latent_dim", 16), ("enc_channels", 8),
                                        ("latent_norm", "simnorm"), ("stack_as", "differences")])
def test_an_explicit_clashing_shape_key_is_refused(source, key, value):
    _, root = source
    pretrained = load_pretrained_encoder(root / "encoder.pt")
    with pytest.raises(ConfigError, match=f"{key}={value!r} \\(the encoder has"):
        adopt_encoder_config(Config.from_preset("debug", **{**SMALL, key: value}), pretrained, explicit={key})


def test_a_model_of_another_shape_is_refused_naming_each_key(source):
    _, root = source
    pretrained = load_pretrained_encoder(root / "encoder.pt")
    other = WorldModel(Config.from_preset("debug", history=3), ActionSpec("discrete", 2))
    with pytest.raises(CheckpointError, match="image_size: source 32 vs this model 64.*history: source 2 vs"):
        transfer_into(other, pretrained)


def test_bad_sources_give_one_clear_error(source, tmp_path):
    _, root = source
    with pytest.raises(CheckpointError, match="no such run folder or file"):
        load_pretrained_encoder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a run folder"):
        load_pretrained_encoder(tmp_path / "empty")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_pretrained_encoder(tmp_path / "junk.pt")
    save_checkpoint({"x": 1}, tmp_path / "other.pt", kind="probe")
    with pytest.raises(CheckpointError, match="no encoder to transfer"):
        load_pretrained_encoder(tmp_path / "other.pt")
    fresh = RunDir.create(Config.from_preset("debug", run_dir=str(tmp_path / "fresh")))
    with pytest.raises(CheckpointError, match="no encoder.pt and no checkpoint"):
        load_pretrained_encoder(fresh.path)


def test_corrupted_weights_are_refused(source):
    _, root = source
    pretrained = load_pretrained_encoder(root / "encoder.pt")
    name = next(iter(pretrained.state_dict))
    pretrained.state_dict[name] = torch.zeros(3)
    target = WorldModel(Config.from_preset("debug", **SMALL), ActionSpec("discrete", 2))
    with pytest.raises(CheckpointError, match="do not load"):
        transfer_into(target, pretrained)
