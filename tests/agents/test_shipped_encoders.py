"""Shipped encoders: listed with their facts, loaded by name with weights_only, refused when corrupted."""

import json
import shutil

import pytest
import torch

from agents.training import pretrained as shipped
from agents.training.pretrain import run_pretraining
from agents.training.pretrained import (
    encoder_objective,
    load_pretrained_encoder,
    ship_encoder,
    shipped_encoders,
)
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import Config, ConfigError
from worldmodel.model import ENCODER_KEYS


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pre") / "run"
    assert run_pretraining("pretrain.py", ["preset=debug", "collect_steps=300", "pretrain_updates=2",
                                           "pretrain_probe_every=2", "probe_episodes=2", f"run_dir={run_dir}",
                                           "tensorboard=false"]) == 0
    return run_dir


@pytest.fixture()
def weights(tmp_path, monkeypatch):
    """An empty folder standing in for worldmodel/weights/."""
    folder = tmp_path / "weights"
    monkeypatch.setattr(shipped, "WEIGHTS", folder)
    return folder


def test_a_shipped_encoder_is_listed_and_loads_by_name(pretrain_run, weights):
    entry = ship_encoder(pretrain_run, "tiny", note="test")
    assert shipped_encoders() == {"tiny": entry}
    assert entry["envs"] == ["Pendulum-v1"] and entry["objective"] == "both" and entry["pretrain_updates"] == 2
    assert "probe/r2" in entry["probe_r2"] and entry["bytes"] == (weights / "tiny.pt").stat().st_size
    assert entry["commands"][0].startswith("python scripts/pretrain.py preset=debug env=Pendulum-v1 ")  # the env, always
    assert entry["enc_act"] == Config.from_preset("debug").enc_act
    assert "pretrain_updates=2" in entry["commands"][0] and "run_dir" not in entry["commands"][0].replace("run_dir=<run>", "")
    torch.load(weights / "tiny.pt", weights_only=True)  # plain tensors and values: nothing pickled
    got = load_pretrained_encoder("pretrained:tiny")
    assert got.source == "pretrained:tiny" and got.env == "Pendulum-v1"
    assert got.state_dict.keys() == load_pretrained_encoder(pretrain_run).state_dict.keys()


def test_a_corrupted_or_missing_shipped_file_is_refused_with_the_fix(pretrain_run, weights):
    ship_encoder(pretrain_run, "tiny")
    data = bytearray((weights / "tiny.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (weights / "tiny.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its recorded SHA-256.*regenerate it: python scripts/pretrain.py"):
        load_pretrained_encoder("pretrained:tiny")
    (weights / "tiny.pt").unlink()
    with pytest.raises(CheckpointError, match="is missing"):
        load_pretrained_encoder("pretrained:tiny")
    (weights / "index.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="index .* is damaged"):
        load_pretrained_encoder("pretrained:tiny")


def test_an_encoders_objective_is_read_from_its_index_entry_or_run_config(pretrain_run, weights, tmp_path):
    ship_encoder(pretrain_run, "tiny", note="test")
    objective = json.loads((pretrain_run / "config.json").read_text())["objective"]
    assert encoder_objective("pretrained:tiny") == objective == encoder_objective(pretrain_run)
    assert encoder_objective(pretrain_run / "encoder.pt") == "–"  # a bare file does not say
    assert encoder_objective("pretrained:nope") == "–"
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    assert encoder_objective(tmp_path / "broken") == "–"


def test_an_unknown_name_lists_what_is_shipped(pretrain_run, weights):
    ship_encoder(pretrain_run, "tiny")
    with pytest.raises(CheckpointError, match="Did you mean pretrained:tiny\\? Shipped: pretrained:tiny"):
        load_pretrained_encoder("pretrained:tiyn")


def test_shipping_refuses_what_cannot_be_shipped(pretrain_run, weights, monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="use letters"):
        ship_encoder(pretrain_run, "a/b")
    monkeypatch.setattr(shipped, "MAX_SHIPPED_BYTES", 1000)
    with pytest.raises(CheckpointError, match="at most 0 MB"):
        ship_encoder(pretrain_run, "big")
    assert not weights.exists() or not list(weights.iterdir())


def test_the_package_ships_encoders_that_load():
    entries = shipped_encoders()
    assert "dmc" in entries, "the multi-domain DMC encoder should ship with the package"
    for name, entry in entries.items():
        assert entry["bytes"] <= shipped.MAX_SHIPPED_BYTES and len(entry["commands"]) == 2
        got = load_pretrained_encoder(f"pretrained:{name}")  # checks the SHA-256 and loads weights_only
        assert got.config["image_size"] == entry["image_size"] and got.env == ",".join(entry["envs"])
        assert got.config["enc_act"] == entry["enc_act"]


@pytest.mark.parametrize("name", ["dmc", "cartpole-balance"])
def test_the_plain_names_fit_the_dmc_preset_as_it_stands(name):
    """`encoder_from=pretrained:dmc` with `preset=dmc` must not quietly swap in an encoder of another
    shape (a run adopts the encoder's shape keys): when the preset's encoder changes, new encoders take
    the plain names and the old ones keep names that say what they are (`dmc-silu`)."""
    preset = Config.from_preset("dmc")
    got = load_pretrained_encoder(f"pretrained:{name}")
    assert {k: got.config[k] for k in ENCODER_KEYS} == {k: getattr(preset, k) for k in ENCODER_KEYS}
    entry = shipped_encoders()[name]
    assert entry["objective"] == preset.objective  # pretrained as the preset trains: its objective, augmentation
    assert not any(f" {key}=" in entry["commands"][0] for key in ("objective", "augment", "enc_act"))


def test_the_listing_script_shows_each_encoder(pretrain_run, weights, capsys):
    import runpy
    ship_encoder(pretrain_run, "tiny")
    module = runpy.run_path(str(shipped.Path(__file__).parents[2] / "scripts" / "encoders.py"))
    assert module["main"]([]) == 0
    out = capsys.readouterr().out
    assert "pretrained:tiny" in out and "Pendulum-v1" in out and "python scripts/pretrain.py" in out
    assert "| conv activation |" in out and f"| {Config.from_preset('debug').enc_act} |" in out
    assert json.loads((weights / "index.json").read_text())["tiny"]["file"] == "tiny.pt"
    shutil.rmtree(weights)


def test_train_py_starts_from_a_shipped_encoder_and_probes_it_at_step_0(pretrain_run, weights, tmp_path):
    import runpy

    from agents.analysis.metrics import load_metrics
    ship_encoder(pretrain_run, "tiny")
    train = runpy.run_path(str(shipped.Path(__file__).parents[2] / "scripts" / "train.py"))["main"]
    run_dir = tmp_path / "target"
    assert train(["preset=debug", "env=MountainCarContinuous-v0", "encoder_from=pretrained:tiny", "encoder_mode=frozen",
                  "steps=120", "eval_every=120", f"run_dir={run_dir}", "video=false", "tensorboard=false"]) == 0
    records = load_metrics(run_dir)
    assert records[0]["step"] == 0 and "probe/r2" in records[0]
    assert json.loads((run_dir / "config.json").read_text())["encoder_from"] == "pretrained:tiny"
