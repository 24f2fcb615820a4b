"""End to end: the README's main command at the debug preset, stop/resume, evaluation, bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio
import pytest
import torch

from agents.analysis.metrics import read_metrics
from worldmodel.checkpoint import load_checkpoint
from worldmodel.replay import SequenceReplay

ROOT = Path(__file__).resolve().parents[2]


def script(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """`bash scripts/run.sh train` (the README's first command) with the debug preset."""
    run_dir = tmp_path_factory.mktemp("train") / "run"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "run.sh"), "train", "preset=debug", "video=true",
                           f"run_dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_readme_main_command_leaves_a_complete_run_folder(trained):
    records = read_metrics(trained / "metrics.jsonl")
    assert all("step" in r for r in records)
    assert any("eval/return" in r for r in records) and any("train/episode_return" in r for r in records)
    losses = [r for r in records if "loss/total" in r]
    assert losses and {"loss/value", "loss/policy", "loss/reward", "loss/consistency"} <= set(losses[-1])
    assert (trained / "config.json").is_file()
    videos = sorted((trained / "videos").glob("imagined_*.mp4"))
    assert [v.name for v in videos] == ["imagined_000000200.mp4", "imagined_000000400.mp4"]
    assert (trained / "videos" / "imagined_000000400.json").is_file()
    assert any("imagine/pixel_mse" in r for r in records)
    assert (trained / "plots" / "learning_curves.png").stat().st_size > 10_000
    assert (trained / "checkpoints" / "latest").read_text() == "step_000000400"
    assert any((trained / "tb").iterdir())


def test_resume_continues_the_step_count_and_the_metrics_file(trained, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    proc = script("train", f"run_dir={run_dir}", "resume=true", "steps=600")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(run_dir / "metrics.jsonl")
    steps = [r["step"] for r in records]
    assert steps == sorted(steps) and steps[-1] == 600
    updates = [r["train/updates"] for r in records if "train/updates" in r]
    assert updates == sorted(updates), "the update counter restarted"
    assert (run_dir / "checkpoints" / "latest").read_text() == "step_000000600"
    # What the resumed run carried over: its counters, the trainer's step, and the replay (grown, not refilled).
    before = load_checkpoint(trained / "checkpoints" / "step_000000400" / "state.pt", kind="online_state")
    after = load_checkpoint(run_dir / "checkpoints" / "step_000000600" / "state.pt", kind="online_state")
    assert after["counters"]["restarts"] == 1 and after["counters"]["episodes"] >= before["counters"]["episodes"]
    assert after["agent"]["trainer"]["steps"] == after["counters"]["updates"] > before["counters"]["updates"]
    def rows(run):
        return len(SequenceReplay.from_saved(run / "checkpoints" / run.joinpath("checkpoints", "latest").read_text() / "replay", 2))
    assert rows(run_dir) >= rows(trained) + 100  # 200 more env steps at action_repeat=2


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = ["preset=debug", f"run_dir={run_dir}", "steps=100000", "checkpoint_every=100", "eval_every=100000",
            "tensorboard=false"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run_dir / "checkpoints" / "latest"
    deadline = time.time() + 400
    while time.time() < deadline and not (latest.exists() and latest.read_text() >= "step_000000300"):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert latest.exists(), "train.py wrote no checkpoint within 400 s (a very slow or busy machine?)"
    saved = int(latest.read_text().split("_")[1])
    assert saved >= 300
    resumed = script("train", f"run_dir={run_dir}", "resume=true", f"steps={saved + 100}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == saved + 100


def test_evaluate_reports_return_and_records_video(trained):
    proc = script("evaluate", f"run_dir={trained}", "episodes=2", "video=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "return" in proc.stdout
    result = json.loads((trained / "eval_step_000000400.json").read_text())
    assert result["episodes"] == 2 and len(result["returns"]) == 2
    assert result["return_mean"] == pytest.approx(sum(result["returns"]) / 2)
    assert all(-16.3 * 200 <= r <= 0 for r in result["returns"])  # Pendulum's reward range, 200 steps
    reader = imageio.get_reader(trained / "videos" / "eval_step_000000400.mp4", "ffmpeg")
    # 2 episodes of 100 agent steps (200 env steps, action repeat 2; the first episode's terminal
    # frame is shown too), 64x64 frames shown 4x.
    assert reader.count_frames() == 201 and reader.get_data(0).shape == (256, 256, 3)


def test_evaluate_a_named_checkpoint(trained):
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", "checkpoint=step_000000200")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((trained / "eval_step_000000200.json").read_text())["episodes"] == 1


@pytest.mark.parametrize("args,match", [
    (["preset=debug", "colour=red"], "Unknown config key 'colour'"),
    (["preset=debug", "steps=lots"], "is not a number"),
    (["preset=debug", "planner=ilqr"], "choose one of mppi, cem"),
    (["preset=debug", "env=Pendulum"], "Did you mean: Pendulum-v1"),
    (["preset=debug", "resume=true", "run_dir=/nonexistent/run"], "not a run folder"),
])
def test_train_bad_input_exits_2_with_one_clear_message(args, match):
    proc = script("train", *args)
    assert proc.returncode == 2
    assert match in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args,match", [
    (["episodes=3"], "run_dir= is required"),
    (["run_dir=/nonexistent/run"], "not a run folder"),
    (["run_dir={run}", "episode=3"], "Unknown key 'episode'. Did you mean episodes"),
    (["run_dir={run}", "episodes=many"], "is not a number"),
    (["run_dir={run}", "episodes=0"], "episodes=0 must be at least 1"),
    (["run_dir={run}", "env=CartPole-v1"], "trained on 'Pendulum-v1'"),
    (["run_dir={run}", "checkpoint=step_999"], "No checkpoint file"),
])
def test_evaluate_bad_input_exits_2_with_one_clear_message(trained, args, match):
    proc = script("evaluate", *[a.format(run=trained) for a in args])
    assert proc.returncode == 2, proc.stderr
    assert match in proc.stderr and "Traceback" not in proc.stderr


def test_bad_env_leaves_no_run_folder(tmp_path):
    run_dir = tmp_path / "never"
    proc = script("train", "preset=debug", "env=NoSuchEnv-v0", f"run_dir={run_dir}")
    assert proc.returncode == 2 and not run_dir.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("args,match", [
    (["device=cuda"], "CUDA is not available"),
    (["precision=fp16"], "precision=fp16 is not supported on CPU"),  # device=auto resolves to the CPU here
    (["replay_device=cuda:0"], "CUDA is not available"),
])
def test_a_device_this_machine_lacks_exits_2_and_leaves_no_run_folder(tmp_path, args, match):
    run_dir = tmp_path / "never"
    proc = script("train", "preset=debug", *args, f"run_dir={run_dir}")
    assert proc.returncode == 2 and not run_dir.exists()
    assert match in proc.stderr and "Traceback" not in proc.stderr


def test_resume_with_another_env_is_refused(trained, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    proc = script("train", f"run_dir={run_dir}", "resume=true", "env=CartPole-v1")
    assert proc.returncode == 2 and "trained on 'Pendulum-v1'" in proc.stderr


def test_discrete_action_env_trains(tmp_path):
    run_dir = tmp_path / "cartpole"
    proc = script("train", "preset=debug", "env=CartPole-v1", "steps=300", f"run_dir={run_dir}", "tensorboard=false",
                  "planner=cem")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(run_dir / "metrics.jsonl")
    assert any("eval/return" in r for r in records) and any("loss/policy" in r for r in records)


def test_online_runs_log_the_probe_and_the_latent_spread_at_each_evaluation(tmp_path):
    run_dir = tmp_path / "run"
    proc = script("train", "preset=debug", "probe_online=true", "probe_episodes=2", "steps=300", "eval_every=150",
                  "eval_episodes=2", "tensorboard=false", f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(run_dir / "metrics.jsonl")
    evaluated = sorted(r["step"] for r in records if "eval/return" in r)
    probed = sorted(r["step"] for r in records if "probe/r2" in r)
    assert probed == evaluated == [150, 300]
    # the same probe, cross-validated over each evaluation's own episodes (Pendulum: 3 state dims)
    policy = [r for r in records if "probe/r2_policy" in r]
    assert [r["step"] for r in policy] == [150, 300]
    assert all(r["probe/r2_policy"] <= 1 and "probe/r2_policy_dim2" in r for r in policy)
    # and the value checked against the return that followed on them
    valued = [r for r in records if "value/corr_policy" in r]
    assert [r["step"] for r in valued] == [150, 300]
    assert all(-1 <= r["value/corr_policy"] <= 1 and r["value/r2_policy"] <= 1 and "value/bias_policy" in r
               for r in valued)
    # and the reward head along the actions taken
    rewarded = [r for r in records if "reward/corr_policy" in r]
    assert [r["step"] for r in rewarded] == [150, 300]
    assert all(-1 <= r["reward/corr_policy"] <= 1 and r["reward/r2_policy"] <= 1 and "reward/bias_top_policy" in r
               for r in rewarded)
    spread = [r["model/latent_std_mean"] for r in records if "model/latent_std_mean" in r]
    assert spread and all(s > 0 for s in spread)


def test_evaluation_envs_side_by_side_leave_training_untouched(tmp_path):
    """eval_envs=3 plays each evaluation's 3 episodes side by side (one batched plan per step) in the
    training process; the training itself (losses, returns of training episodes) is bit-identical."""
    logs = {}
    for envs in (0, 3):
        run_dir = tmp_path / f"eval_envs{envs}"
        proc = script("train", "preset=debug", "steps=300", "eval_every=150", "eval_episodes=3", f"eval_envs={envs}",
                      "tensorboard=false", f"run_dir={run_dir}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        logs[envs] = read_metrics(run_dir / "metrics.jsonl")
    trained = {envs: [{k: v for k, v in r.items() if k.startswith(("loss/", "train/episode_return"))}
                      for r in records] for envs, records in logs.items()}
    assert trained[0] == trained[3] and any("loss/total" in r for r in trained[0])
    for records in logs.values():
        evaluations = [r for r in records if "eval/return" in r]
        assert [r["step"] for r in evaluations] == [150, 300]
        assert all(r["eval/episodes_per_second"] > 0 for r in evaluations)
    assert json.loads((tmp_path / "eval_envs3" / "config.json").read_text())["eval_envs"] == 3


def test_eval_also_plays_each_evaluation_again_under_its_conditions_and_changes_nothing_else(tmp_path):
    """eval_also=noise:5,MountainCarContinuous-v0 logs eval/noise:5/return and
    eval/MountainCarContinuous-v0/return at every evaluation; the losses, the training returns and the
    clean evaluation are bit-identical to a run without it, and a resume may add it. Two evaluation
    envs side by side (as the dmc preset's ten): MountainCar's 500-step episodes are most of the cost."""
    logs = {}
    for name, extra in (("plain", []), ("also", ["eval_also=noise:5,MountainCarContinuous-v0"])):
        proc = script("train", "preset=debug", "steps=300", "eval_every=150", "eval_episodes=2", "eval_envs=2",
                      "tensorboard=false",
                      f"run_dir={tmp_path / name}", *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        logs[name] = read_metrics(tmp_path / name / "metrics.jsonl")
    same = {name: [{k: v for k, v in r.items() if k.startswith(("loss/", "train/episode_return"))
                    or k in ("eval/return", "eval/return_std")} for r in records] for name, records in logs.items()}
    assert same["plain"] == same["also"] and any("eval/return" in r for r in same["plain"])
    evaluations = [r for r in logs["also"] if "eval/return" in r]
    assert [r["step"] for r in evaluations] == [150, 300]
    for r in evaluations:
        assert {"eval/noise:5/return", "eval/noise:5/return_std", "eval/MountainCarContinuous-v0/return"} <= set(r)
        assert r["eval/MountainCarContinuous-v0/return"] != r["eval/return"]
    assert not any(k.startswith("eval/noise") for r in logs["plain"] for k in r)
    assert (tmp_path / "also" / "plots" / "learning_curves.png").is_file()
    proc = script("train", "resume=true", f"run_dir={tmp_path / 'plain'}", "steps=450", "eval_also=color:2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "eval/color:2/return" in [r for r in read_metrics(tmp_path / "plain" / "metrics.jsonl")
                                     if "eval/return" in r][-1]


@pytest.mark.parametrize("value, message", [
    ("colr:3", "Unknown perturbation 'colr'"),
    ("color_hard", "recolours DeepMind Control scenes"),
    ("MountainCar-v0", "takes discrete actions of size 3"),
    ("Pendulum-v2", "Pendulum-v1"),
    ("Pendulum-v1", "the run's own env"),
    ("noise:2,noise:2", "name each condition once"),
])
def test_a_bad_eval_also_condition_fails_before_the_run_folder(tmp_path, value, message):
    proc = script("train", "preset=debug", f"eval_also={value}", f"run_dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_eval_envs_must_not_be_negative(tmp_path):
    proc = script("train", "preset=debug", "eval_envs=-1", f"run_dir={tmp_path / 'run'}")
    assert proc.returncode != 0 and "eval_envs=-1 must be 0" in proc.stderr
    assert not (tmp_path / "run").exists()
