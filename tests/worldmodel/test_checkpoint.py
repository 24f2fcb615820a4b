"""Checkpoint files and run checkpoints on a full disk; a world model that does not fit its checkpoint."""

import shutil
from collections import namedtuple

import numpy as np
import pytest
import torch

from agents.training.runs import ONLINE, RunDir
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.config import Config
from worldmodel.model import WorldModel
from worldmodel.replay import SequenceReplay
from worldmodel.trainer import WorldModelTrainer

_Usage = namedtuple("_Usage", "total used free")  # what shutil.disk_usage returns


def _free(monkeypatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: _Usage(10**12, 10**12 - free, free))


def _replay(rows: int) -> SequenceReplay:
    replay = SequenceReplay(5_000, 4, (3, 64, 64), 1)
    for t in range(rows):
        replay.add(np.zeros((1, 3, 64, 64), np.uint8), np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.zeros(1),
                   np.array([t == 0]))
    return replay


def test_save_checkpoint_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_checkpoint({"w": torch.ones(3)}, tmp_path / "state.pt", kind="test")
    _free(monkeypatch, 1000)
    with pytest.raises(CheckpointError, match=r"Not enough free disk space to write .*state\.pt: it needs about"):
        save_checkpoint({"w": torch.zeros(3)}, path, kind="test")
    assert torch.equal(load_checkpoint(path, kind="test")["w"], torch.ones(3))
    assert not path.with_name("state.pt.tmp").exists()


@pytest.mark.parametrize("free", [1000, 2_000_000])  # short for everything / for the replay only
def test_a_run_checkpoint_on_a_full_disk_keeps_latest(tmp_path, monkeypatch, free):
    run = RunDir.create(Config.from_preset("debug", run_dir=str(tmp_path / "run")))
    state = {"env": "Pendulum-v1", "w": torch.ones(10)}
    run.save_checkpoint(100, state, ONLINE, extra=lambda d: _replay(10).save(d / "replay"))
    _free(monkeypatch, free)
    replay = _replay(300)  # 3.7 MB of frames
    with pytest.raises(CheckpointError, match=r"Checkpoint step_000000200 was not written: Not enough free disk "
                                              r"space.* step_000000100, is still the latest"):
        run.save_checkpoint(200, state, ONLINE, extra=lambda d: replay.save(d / "replay"))
    assert (run.checkpoints / "latest").read_text() == "step_000000100"
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["latest", "step_000000100"]
    folder, _, _ = run.load("latest")
    assert len(SequenceReplay.from_saved(folder / "replay", 4)) == 10


def test_the_first_run_checkpoint_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch):
    run = RunDir.create(Config.from_preset("debug", run_dir=str(tmp_path / "run")))
    _free(monkeypatch, 2_000_000)
    replay = _replay(300)
    with pytest.raises(CheckpointError, match=r"save the replay \(300 transitions\).*none, is still the latest"):
        run.save_checkpoint(100, {"env": "Pendulum-v1"}, ONLINE, extra=lambda d: replay.save(d / "replay"))
    assert run.latest_checkpoint() is None and not any(run.checkpoints.iterdir())


def _trainer(**overrides) -> WorldModelTrainer:
    cfg = Config.from_preset("debug", **{"image_size": 32, "enc_stem": 2, "enc_depth": 2, **overrides})
    return WorldModelTrainer(WorldModel(cfg, ActionSpec("continuous", 1)), torch.device("cpu"), "fp32", 1e-3, 10.0)


@pytest.mark.parametrize("key,saved,mine,shapes", [
    ("latent_dim", 32, 16, "_encoder.project.weight saved (32, 256), expected (16, 256)"),
    ("image_size", 32, 64, "_encoder.project.weight saved (32, 256), expected (32, 1024)"),
])
def test_a_checkpoint_of_another_shape_names_parameters_shapes_and_config_keys(key, saved, mine, shapes):
    state = _trainer(**{key: saved}).state_dict()
    with pytest.raises(CheckpointError) as error:
        _trainer(**{key: mine}).load_state_dict(state)
    message = str(error.value)
    assert f"the checkpoint was saved with {key}={saved}, this config has {key}={mine}" in message
    assert f"Parameters: {shapes}" in message
    assert "\n" not in message and "more." in message  # the first few parameters, then a count


def test_a_checkpoint_without_its_config_still_names_the_parameters():
    state = _trainer().state_dict()
    del state["config"]  # as written before the trainer saved its config
    other = _trainer(hidden_dim=32)
    with pytest.raises(CheckpointError, match=r"saved with a different image_size/history/latent_dim/hidden_dim"
                                              r".*Parameters: _dynamics\.\S+ saved \(64, "):
        other.load_state_dict(state)


def test_a_checkpoint_that_fits_loads():
    source, target = _trainer(), _trainer()
    target.load_state_dict(source.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(source.model.state_dict().values(), target.model.state_dict().values()))
