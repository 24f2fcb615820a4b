"""End to end: the README's main command at the debug preset, stop/resume, and bad input."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.runs import read_metrics

ROOT = Path(__file__).resolve().parents[2]


def train(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_readme_main_command_debug_preset(tmp_path):
    """`bash scripts/run.sh train` (the README's first command) with the debug preset."""
    run_dir = tmp_path / "run"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "run.sh"), "train", "preset=debug", f"run_dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(run_dir / "metrics.jsonl")
    assert all("step" in r for r in records)
    assert any("eval/return" in r for r in records) and any("train/episode_return" in r for r in records)
    assert (run_dir / "config.json").is_file() and (run_dir / "videos").is_dir()
    assert (run_dir / "checkpoints" / "latest").read_text() == "step_000000400"
    assert any((run_dir / "tb").iterdir())


def test_resume_continues_the_step_count_and_the_metrics_file(tmp_path):
    run_dir = tmp_path / "run"
    assert train("preset=debug", f"run_dir={run_dir}", "tensorboard=false").returncode == 0
    proc = train(f"run_dir={run_dir}", "resume=true", "steps=600")
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 600
    assert (run_dir / "checkpoints" / "latest").read_text() == "step_000000600"


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = ["preset=debug", f"run_dir={run_dir}", "steps=100000", "checkpoint_every=200", "eval_every=100000",
            "tensorboard=false"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run_dir / "checkpoints" / "latest"
    deadline = time.time() + 240
    while time.time() < deadline and not (latest.exists() and latest.read_text() >= "step_000000400"):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = int(latest.read_text().split("_")[1])
    assert saved >= 400
    resumed = train(f"run_dir={run_dir}", "resume=true", f"steps={saved + 200}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == saved + 200


@pytest.mark.parametrize("args,match", [
    (["preset=debug", "colour=red"], "Unknown config key 'colour'"),
    (["preset=debug", "steps=lots"], "is not a number"),
    (["preset=debug", "env=Pendulum"], "Did you mean: Pendulum-v1"),
    (["preset=debug", "resume=true", "run_dir=/nonexistent/run"], "not a run folder"),
])
def test_bad_input_exits_2_with_one_clear_message(tmp_path, args, match):
    proc = train(*args)
    assert proc.returncode == 2
    assert match in proc.stderr and "Traceback" not in proc.stderr


def test_bad_env_leaves_no_run_folder(tmp_path):
    run_dir = tmp_path / "never"
    proc = train("preset=debug", "env=NoSuchEnv-v0", f"run_dir={run_dir}")
    assert proc.returncode == 2 and not run_dir.exists()


def test_resume_with_another_env_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    assert train("preset=debug", f"run_dir={run_dir}", "steps=200", "tensorboard=false").returncode == 0
    proc = train(f"run_dir={run_dir}", "resume=true", "env=CartPole-v1")
    assert proc.returncode == 2 and "trained on 'Pendulum-v1'" in proc.stderr
