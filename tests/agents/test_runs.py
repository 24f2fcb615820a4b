import os
import pickle

import pytest
import torch

from agents.analysis.metrics import read_metrics
from agents.training.runs import ONLINE, MetricsLogger, RunDir
from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.config import Config


def test_run_folder_layout(tmp_path):
    cfg = Config.from_preset("debug", run_dir=str(tmp_path / "run"))
    run = RunDir.create(cfg)
    assert (run.path / "config.json").is_file() and run.checkpoints.is_dir() and run.videos.is_dir()
    assert RunDir.open(run.path).config().run_dir == str(run.path)


def test_default_run_dir_name():
    from agents.training.runs import default_run_dir

    path = default_run_dir(Config.from_preset("debug", env="dm_control/cartpole-swingup-v0", exp="e", seed=4))
    assert path.parent.name == "runs" and path.name.startswith("dm_control-cartpole-swingup-v0__e__4__")


def test_checkpoints_are_complete_and_pruned(tmp_path):
    run = RunDir.create(Config.from_preset("debug", run_dir=str(tmp_path / "run")))
    for step in (100, 200, 300):
        run.save_checkpoint(step, {"env": "Pendulum-v1", "w": torch.full((2,), float(step))}, ONLINE,
                            extra=lambda d: (d / "extra.txt").write_text("x"), keep=2)
    folder, _, state = run.load("latest")
    assert folder.name == "step_000000300" and state["w"][0] == 300
    assert sorted(p.name for p in run.checkpoints.glob("step_*")) == ["step_000000200", "step_000000300"]
    # A half-written checkpoint (killed mid-write) is never what `latest` points at.
    (run.checkpoints / "step_000000400.tmp").mkdir()
    assert run.latest_checkpoint().name == "step_000000300"


def test_creating_over_an_existing_run_is_refused(tmp_path):
    cfg = Config.from_preset("debug", run_dir=str(tmp_path / "run"))
    run = RunDir.create(cfg)
    run.save_checkpoint(1, {}, ONLINE)
    run.unlock()  # the run ended; its folder stays
    with pytest.raises(CheckpointError, match="resume=true"):
        RunDir.create(cfg)


def test_metrics_resume_drops_records_after_the_checkpoint(tmp_path):
    run = RunDir.create(Config.from_preset("debug", run_dir=str(tmp_path / "run")))
    log = MetricsLogger(run, tensorboard=True)
    for step in (10, 20, 30, 40):
        log.log(step, {"loss/x": step / 10})
    log.close()
    with open(run.metrics, "a") as f:
        f.write('{"step": 50, "lo')  # a line cut by a kill
    log = MetricsLogger(run, tensorboard=True, resume_step=20)
    log.log(30, {"loss/x": 9.0})
    log.close()
    records = read_metrics(run.metrics)
    assert [r["step"] for r in records] == [10, 20, 30] and records[-1]["loss/x"] == 9.0
    assert all("time" in r for r in records)
    assert any(p.name.startswith("events.out.tfevents") for p in run.tb.iterdir())


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "kind": "train_state", "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(path)


def test_corrupted_wrong_kind_and_missing_checkpoints(tmp_path):
    good = save_checkpoint({"w": torch.ones(2)}, tmp_path / "good.pt", kind="encoder")
    assert load_checkpoint(good, kind="encoder")["w"].sum() == 2
    with pytest.raises(CheckpointError, match="expected 'world_model'"):
        load_checkpoint(good, kind="world_model")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_checkpoint(corrupt)
    with pytest.raises(CheckpointError, match="No checkpoint file"):
        load_checkpoint(tmp_path / "absent.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"w": torch.ones(1)}, foreign)
    with pytest.raises(CheckpointError, match="no format_version"):
        load_checkpoint(foreign)
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "plain.pkl")
    newer = tmp_path / "newer.pt"
    torch.save({"format_version": 99, "kind": "encoder", "w": torch.ones(1)}, newer)
    with pytest.raises(CheckpointError, match="has checkpoint format 99"):
        load_checkpoint(newer)


def test_a_cut_short_metrics_line_is_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "a": 1.0}\n{"step": 2, "a"\n{"step": 3, "a": 3.0}\n')
    assert [r["step"] for r in read_metrics(path)] == [1, 3]


def test_a_trainer_state_of_another_model_is_a_clear_error():
    from worldmodel.model import WorldModel
    from worldmodel.trainer import WorldModelTrainer

    def trainer(latent_dim):
        cfg = Config.from_preset("debug", image_size=32, enc_stem=2, latent_dim=latent_dim)
        return WorldModelTrainer(WorldModel(cfg, 1), torch.device("cpu"), "fp32", cfg.lr, cfg.grad_clip)

    with pytest.raises(CheckpointError, match="does not fit this one"):
        trainer(16).load_state_dict(trainer(32).state_dict())
