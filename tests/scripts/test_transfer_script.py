"""End to end: pretrain on a continuous-action env, transfer the encoder to a discrete-action one."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.analysis.metrics import read_metrics
from agents.training.runs import RunDir
from worldmodel.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("source") / "pendulum"
    proc = script("pretrain", "preset=debug", "env=Pendulum-v1", "pretrain_updates=20", "pretrain_probe_every=20", "collect_steps=300",
                  "tensorboard=false", f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_frozen_transfer_to_a_discrete_target(source, tmp_path):
    run_dir = tmp_path / "cartpole"
    proc = script("transfer", f"encoder={source}", "env=CartPole-v1", "mode=frozen", "preset=debug", "steps=300",
                  "tensorboard=false", f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "probe/r2 of the transferred encoder on CartPole-v1" in proc.stderr
    records = read_metrics(run_dir / "metrics.jsonl")
    assert records[0]["step"] == 0 and "probe/r2" in records[0]
    assert any("eval/return" in r for r in records)
    cfg = RunDir.open(run_dir).config()
    assert (cfg.encoder_from, cfg.encoder_mode, cfg.exp) == (str(source), "frozen", "transfer_frozen")
    # The encoder after training is bit-identical to the source's.
    pretrained = load_checkpoint(source / "encoder.pt", kind="encoder")["state_dict"]
    _, _, state = RunDir.open(run_dir).load("latest")
    trained = state["agent"]["trainer"]["model"]
    assert all(torch.equal(trained[f"_encoder.{k}"], v) for k, v in pretrained.items())
    # The transferred agent evaluates like any other.
    proc = script("evaluate", f"run_dir={run_dir}", "episodes=1")
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("args, message", [
    (["mode=sideways"], "mode='sideways' is not valid"),
    (["mode=frozen"], "mode=frozen needs encoder="),
    (["mode=frozen", "encoder={tmp}/nowhere"], "no such run folder or file"),
    (["mode=finetune", "encoder={source}", "image_size=32"], "image_size=32 (the encoder has 64)"),
    (["resume=on", "mode=frozen", "encoder={source}"], "mode= cannot change when resuming"),
])
def test_bad_transfer_input_exits_2_with_one_clear_message(source, tmp_path, args, message):
    proc = script("transfer", "env=CartPole-v1", "preset=debug", f"run_dir={tmp_path / 'run'}",
                  *[a.format(source=source, tmp=tmp_path) for a in args])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing half-written
