"""torchrun with the gloo backend: 2 CPU processes train one agent with DistributedDataParallel."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.analysis.metrics import read_metrics
from agents.training.runs import RunDir
from worldmodel.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["preset=debug", "device=cpu", "steps=400", "tensorboard=false", "env=CartPole-v1"]


def torchrun(*args: str, procs: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
           str(ROOT / "scripts" / "train.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def single(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    proc = torchrun(*ARGS, f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "2 processes" in proc.stderr
    return run_dir


def _models(folder: Path) -> tuple[dict, dict]:
    rank0 = load_checkpoint(folder / "state.pt")
    rank1 = load_checkpoint(folder / "rank1" / "state.pt")
    return rank0, rank1


def test_parameters_stay_identical_across_ranks(ddp_run):
    folder = RunDir.open(ddp_run).latest_checkpoint()
    rank0, rank1 = _models(folder)
    m0, m1 = rank0["agent"]["trainer"]["model"], rank1["agent"]["trainer"]["model"]
    assert m0.keys() == m1.keys()
    assert all(torch.equal(m0[k], m1[k]) for k in m0)
    assert rank0["counters"]["updates"] > 0 and rank0["counters"] == rank1["counters"]
    # ... while each rank collected its own experience.
    assert (folder / "replay").is_dir() and (folder / "rank1" / "replay").is_dir()
    assert not torch.equal(rank0["explorer"]["generator"], rank1["explorer"]["generator"])


def test_metrics_have_the_shape_of_a_single_process_run(ddp_run, tmp_path):
    proc = single(*ARGS, f"run_dir={tmp_path / 'single'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp, one = read_metrics(ddp_run / "metrics.jsonl"), read_metrics(tmp_path / "single" / "metrics.jsonl")
    keys = lambda records: set().union(*(r.keys() for r in records if "loss/total" in r))
    assert keys(ddp) == keys(one)
    evals = lambda records: [r["step"] for r in records if "eval/return" in r]
    assert len(evals(ddp)) == len(evals(one)) == 2
    # Steps count both ranks' envs (a step after an episode's end counts none, so 4 or 2 at a time).
    counters = RunDir.open(ddp_run).load("latest")[2]["counters"]
    assert 400 <= counters["env_steps"] <= 402
    # Each rank updates as often as one process would in half the steps, on its own batches.
    assert counters["updates"] == pytest.approx(10 + 0.25 * (counters["env_steps"] - 100) / 2 / 2, abs=2)


def test_resume_under_torchrun_and_refusal_without_it(ddp_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(ddp_run, run_dir)
    proc = torchrun(f"run_dir={run_dir}", "resume=true", "steps=600")
    assert proc.returncode == 0, proc.stderr[-4000:]
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 600
    rank0, rank1 = _models(RunDir.open(run_dir).latest_checkpoint())
    assert rank0["counters"]["restarts"] == 1
    assert all(torch.equal(v, rank1["agent"]["trainer"]["model"][k])
               for k, v in rank0["agent"]["trainer"]["model"].items())
    proc = single(f"run_dir={run_dir}", "resume=true", "steps=800")
    assert proc.returncode == 2 and "written by 2 process(es)" in proc.stderr
