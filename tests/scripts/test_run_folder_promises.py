"""What a run folder promises under a second writer, a kill, a signal, a damaged checkpoint, a
read-only disk and bad input (issue 18). Each test failed before its fix."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.analysis.metrics import read_metrics
from agents.training.runs import RunDir
from worldmodel.config import Config

ROOT = Path(__file__).resolve().parents[2]
FAST = ("preset=debug", "tensorboard=false")


def script(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def start(name: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def one_line_error(proc: subprocess.CompletedProcess, prog: str) -> str:
    """The single `prog: error: ...` line a refused command prints (no traceback)."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith(f"{prog}: error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished debug run with two checkpoints (steps 200 and 300)."""
    run_dir = tmp_path_factory.mktemp("promises") / "run"
    proc = script("train", *FAST, "steps=300", "checkpoint_every=200", f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def copy_of(trained: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    return run_dir


# --- one writer per run folder --------------------------------------------------------------------
def test_a_second_writer_is_refused_naming_the_running_process(tmp_path):
    run_dir = tmp_path / "run"
    first = start("train", *FAST, "steps=1000", f"run_dir={run_dir}")
    try:
        deadline = time.time() + 120
        while not (run_dir / "config.json").is_file() and time.time() < deadline:
            time.sleep(0.2)
        second = script("train", *FAST, "steps=1000", "seed=1", f"run_dir={run_dir}")
        line = one_line_error(second, "train.py")
        assert f"process {first.pid}" in line and "in use" in line
        assert json.loads((run_dir / "config.json").read_text())["seed"] == 0  # the first run's config stands
    finally:
        first.kill()
        first.wait()


def test_a_killed_runs_lock_does_not_block_its_resume(trained, tmp_path):
    run_dir = copy_of(trained, tmp_path)
    runner = start("train", f"run_dir={run_dir}", "resume=true", "steps=100000")
    time.sleep(8)
    runner.kill()  # SIGKILL: no clean-up of any kind
    runner.wait()
    proc = script("train", f"run_dir={run_dir}", "resume=true", "steps=400")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_library_lock_refuses_a_second_holder_and_frees_on_unlock(tmp_path):
    cfg = Config.from_preset("debug", run_dir=str(tmp_path / "run"))
    run = RunDir.create(cfg)
    from worldmodel.checkpoint import CheckpointError

    # flock locks belong to open files: a second open in this very process is refused as well.
    with pytest.raises(CheckpointError, match=f"process {os.getpid()}"):
        RunDir.open(run.path, write=True)
    run.unlock()
    RunDir.open(run.path, write=True).unlock()


# --- resuming changes only what it can ------------------------------------------------------------
def test_resume_refuses_a_key_that_cannot_change_and_keeps_config_json_true(trained, tmp_path):
    run_dir = copy_of(trained, tmp_path)
    line = one_line_error(script("train", f"run_dir={run_dir}", "resume=true", "lr=1e30"), "train.py")
    assert "lr=1e30" in line and "steps" in line
    proc = script("train", f"run_dir={run_dir}", "resume=true", "steps=400", "eval_every=100")
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["steps"] == 400 and saved["eval_every"] == 100


def test_a_seq_len_no_episode_can_hold_is_refused_before_training(tmp_path):
    # Pendulum's 200-step limit at action_repeat 2 gives episodes of 101 frames.
    line = one_line_error(script("train", *FAST, "seq_len=150", f"run_dir={tmp_path / 'run'}"), "train.py")
    assert "seq_len=150" in line and "at most 100" in line
    assert not (tmp_path / "run").exists()


# --- damaged checkpoints and kills ------------------------------------------------------------------
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(trained, tmp_path):
    run_dir = copy_of(trained, tmp_path)
    latest = run_dir / "checkpoints" / "step_000000300" / "state.pt"
    latest.write_bytes(latest.read_bytes()[:1000])
    proc = script("train", f"run_dir={run_dir}", "resume=true", "steps=400")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from step_000000200" in proc.stderr
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 400


def test_a_rerun_after_a_kill_before_the_first_checkpoint_starts_clean_metrics(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 150, "time": 1.0, "eval/return": 123.0}\n')
    (run_dir / "config.json").write_text(json.dumps(Config.from_preset("debug").to_dict()))
    proc = script("train", *FAST, "steps=200", f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(r.get("eval/return") != 123.0 for r in read_metrics(run_dir / "metrics.jsonl"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_and_exits_with_one_line(tmp_path, signum):
    run_dir = tmp_path / "run"
    runner = start("train", *FAST, "steps=100000", "checkpoint_every=100000", f"run_dir={run_dir}")
    deadline = time.time() + 120
    while time.time() < deadline and not any("train/episode_return" in r for r in
                                             (read_metrics(run_dir / "metrics.jsonl")
                                              if (run_dir / "metrics.jsonl").is_file() else [])):
        time.sleep(0.5)
    runner.send_signal(signum)
    _, err = runner.communicate(timeout=120)
    assert runner.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err
    assert "checkpoint saved" in err and "resume=true" in err
    assert RunDir.open(run_dir).latest_checkpoint() is not None
    resumed = script("train", f"run_dir={run_dir}", "resume=true", "steps=300")
    assert resumed.returncode == 0, resumed.stderr[-3000:]


# --- read-only run folders -------------------------------------------------------------------------
@pytest.fixture
def read_only(trained, tmp_path):
    """A read-only view of the trained run (a read-only bind mount: read-only even for root)."""
    view = tmp_path / "ro"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(trained), str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot bind-mount here")
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(view)])
        pytest.skip("cannot remount read-only here")
    yield view
    subprocess.run(["umount", str(view)])


def test_evaluate_on_a_read_only_run_prints_its_result(read_only):
    proc = script("evaluate", f"run_dir={read_only}", "episodes=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "read-only" in proc.stderr and "return" in proc.stdout
    refused = script("evaluate", f"run_dir={read_only}", "episodes=1", "video=true")
    assert "read-only" in one_line_error(refused, "evaluate.py")


def test_resume_of_a_read_only_run_is_one_line(read_only):
    assert "not writable" in one_line_error(script("train", f"run_dir={read_only}", "resume=true", "steps=400"),
                                            "train.py")


def test_a_new_run_in_a_read_only_place_is_one_line(read_only):
    line = one_line_error(script("train", *FAST, f"run_dir={read_only / 'new_run'}"), "train.py")
    assert "cannot create the run folder" in line


def test_writable_is_tried_not_guessed(read_only, trained):
    assert not RunDir(read_only).writable()
    assert RunDir(trained).writable()


# --- bad input is one line ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["steps=nan", "steps=inf", "seed=-1", "reward_coef=nan", "lr=inf",
                                 "env=phys2d/CartPole-v0", "env=Reacher-v2", "env=GymV26Environment-v0",
                                 "frame_stack=2"])
def test_bad_values_and_unbuildable_ids_are_one_line(tmp_path, bad):
    line = one_line_error(script("train", *FAST, bad, f"run_dir={tmp_path / 'run'}"), "train.py")
    assert bad.split("=")[0] in line or bad.split("=")[1] in line
    assert not (tmp_path / "run").exists()


def test_run_dir_that_is_a_file_is_one_line(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    assert "is a file" in one_line_error(script("train", *FAST, f"run_dir={target}"), "train.py")


def test_online_tools_on_a_pretraining_folder(tmp_path):
    pre = tmp_path / "pre"
    proc = script("pretrain", *FAST, "pretrain_updates=10", "collect_steps=300", f"run_dir={pre}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pretraining run" in one_line_error(script("train", f"run_dir={pre}", "resume=true"), "train.py")
    evaluated = script("evaluate", f"run_dir={pre}", "episodes=1")  # plans with the pretrained heads
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "steps=" in one_line_error(script("pretrain", f"run_dir={pre}", "resume=true", "steps=20"), "pretrain.py")


def test_pretrain_leaves_nothing_behind_when_its_replay_is_refused(tmp_path, trained):
    missing = script("pretrain", *FAST, f"replay_from={tmp_path / 'nowhere'}", f"run_dir={tmp_path / 'a'}")
    one_line_error(missing, "pretrain.py")
    assert not (tmp_path / "a").exists()
    other_env = script("pretrain", *FAST, "env=CartPole-v1",
                       f"replay_from={trained / 'checkpoints' / 'step_000000300' / 'replay'}", f"run_dir={tmp_path / 'b'}")
    assert "replay_from" in one_line_error(other_env, "pretrain.py")
    assert not (tmp_path / "b").exists()


def test_pretraining_a_discrete_env_saves_a_discrete_model(tmp_path):
    from worldmodel.model import WorldModel

    run_dir = tmp_path / "pre"
    proc = script("pretrain", *FAST, "env=CartPole-v1", "pretrain_updates=5", "collect_steps=300",
                  f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = WorldModel.load(run_dir / "world_model.pt")
    assert model.action_spec.kind == "discrete" and model.action_dim == 2


def test_a_non_finite_loss_names_the_environment_step(tmp_path):
    proc = script("train", *FAST, "lr=1e30", "steps=300", f"run_dir={tmp_path / 'run'}")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "Non-finite loss at environment step" in proc.stderr and "(update " in proc.stderr


def test_imagine_on_a_read_only_run_is_one_line_before_any_work(read_only, tmp_path):
    assert "read-only" in one_line_error(script("imagine", f"run_dir={read_only}", "horizon=5"), "imagine.py")
    elsewhere = script("imagine", f"run_dir={read_only}", "horizon=5", "episodes=1", "decoder_steps=10",
                       f"out={tmp_path / 'v.mp4'}")
    assert elsewhere.returncode == 0, elsewhere.stderr[-3000:]
