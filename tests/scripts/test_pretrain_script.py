"""End to end: offline pretraining raises the linear probe above the untrained encoder's."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.analysis.metrics import read_metrics
from worldmodel.model import WorldModel

ROOT = Path(__file__).resolve().parents[2]


def pretrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "pretrain.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("objective", ["contrastive", "masked"])
def test_pretraining_raises_probe_r2(tmp_path, objective):
    run_dir = tmp_path / objective
    # 4,000 random steps and 500 updates: across seeds 0-4 the probe rose by 0.04-0.32 (0.16 at seed 0).
    proc = pretrain("preset=debug", f"objective={objective}", "pretrain_updates=500", "pretrain_probe_every=500", "collect_steps=4000",
                    "seed=0", f"run_dir={run_dir}", "tensorboard=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(run_dir / "metrics.jsonl")
    probes = [(r["step"], r["probe/r2"]) for r in records if "probe/r2" in r]
    assert probes[0][0] == 0 and probes[-1][0] == 500
    untrained, trained = probes[0][1], probes[-1][1]
    assert trained > untrained + 0.08, probes
    losses = [r for r in records if "loss/total" in r]
    assert losses and all(f"loss/{t}" in losses[-1] for t in ("consistency", "reward", "termination", objective))
    model = WorldModel.load(run_dir / "world_model.pt")
    assert model.cfg.objective == objective
    assert torch.load(run_dir / "encoder.pt", weights_only=True)["kind"] == "encoder"


def test_pretraining_resumes(tmp_path):
    run_dir = tmp_path / "run"
    assert pretrain("preset=debug", "pretrain_updates=40", "pretrain_checkpoint_every=20", f"run_dir={run_dir}",
                    "tensorboard=false").returncode == 0
    proc = pretrain(f"run_dir={run_dir}", "resume=true", "pretrain_updates=60")
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 60


def test_bad_objective_is_one_clear_error(tmp_path):
    proc = pretrain("preset=debug", "objective=magic", f"run_dir={tmp_path / 'x'}")
    assert proc.returncode == 2 and "choose one of masked, contrastive, both" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x").exists()


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    proc = pretrain("preset=debug", "lr=1e30", "pretrain_updates=30", "pretrain_checkpoint_every=1", f"run_dir={run_dir}",
                    "tensorboard=false")
    assert proc.returncode == 3
    assert "Non-finite loss at update" in proc.stderr and "Last good checkpoint" in proc.stderr
    latest = (run_dir / "checkpoints" / "latest").read_text()
    state = torch.load(run_dir / "checkpoints" / latest / "state.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["trainer"]["model"].values() if v.is_floating_point())


def test_pretraining_on_several_envs_mixes_their_data_and_probes_each(tmp_path):
    pytest.importorskip("dm_control")
    run_dir = tmp_path / "mixed"
    envs = "Pendulum-v1,dm_control/reacher-easy-v0"  # action sizes 1 and 2; reacher at its PlaNet repeat (4)
    proc = pretrain("preset=debug", f"env={envs}", "collect_steps=600", "pretrain_updates=6", "pretrain_probe_every=3",
                    "pretrain_checkpoint_every=3", "probe_episodes=2", f"run_dir={run_dir}", "tensorboard=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    sources = json.loads((run_dir / "replay" / "mixed.json").read_text())["sources"]
    assert [(s["name"], s["action_repeat"], s["action_dim"]) for s in sources] == [
        ("Pendulum-v1", 2, 1), ("dm_control/reacher-easy-v0", 4, 2)]
    probes = [r for r in read_metrics(run_dir / "metrics.jsonl") if "probe/r2" in r]
    assert [r["step"] for r in probes] == [0, 3, 6]
    assert all({"probe/r2_Pendulum", "probe/r2_reacher-easy"} <= set(r) for r in probes)
    assert probes[-1]["probe/r2"] == pytest.approx((probes[-1]["probe/r2_Pendulum"] + probes[-1]["probe/r2_reacher-easy"]) / 2)
    assert WorldModel.load(run_dir / "world_model.pt").action_dim == 2
    proc = pretrain(f"run_dir={run_dir}", "resume=true", "pretrain_updates=8", "pretrain_probe_every=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_metrics(run_dir / "metrics.jsonl")[-1]["step"] == 8
    # A run over several envs has none to act in: evaluate.py says what to do with it instead.
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), f"run_dir={run_dir}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "encoder_from=" in proc.stderr and "Traceback" not in proc.stderr


def test_several_envs_are_refused_where_they_cannot_work(tmp_path):
    proc = pretrain("preset=debug", "env=Pendulum-v1,CartPole-v1", f"run_dir={tmp_path / 'a'}")
    assert proc.returncode == 2 and "continuous actions only; CartPole-v1" in proc.stderr
    assert not (tmp_path / "a").exists()
    proc = pretrain("preset=debug", "env=Pendulum-v1,Pendulum-v1", f"run_dir={tmp_path / 'b'}")
    assert proc.returncode == 2 and "each environment once" in proc.stderr
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "preset=debug", "env=Pendulum-v1,Acrobot-v1",
                           f"run_dir={tmp_path / 'c'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "names several environments" in proc.stderr and not (tmp_path / "c").exists()
