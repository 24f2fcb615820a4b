"""End to end: `evaluate.py perturb=...` reports return and probe R², clean and perturbed, paired."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def script(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A debug-preset Pendulum agent after 200 environment steps (one checkpoint)."""
    run_dir = tmp_path_factory.mktemp("robust") / "run"
    proc = script("train", "preset=debug", "steps=200", "tensorboard=false", f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_evaluate_reports_clean_and_perturbed_return_and_probe(trained):
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", "probe_episodes=4",
                  "perturb=color:5,distractors:3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "color:5" in proc.stdout and "distractors:3" in proc.stdout and "probe R²" in proc.stdout
    result = json.loads((trained / "eval_step_000000200.json").read_text())
    assert result["episodes"] == 1 and len(result["returns"]) == 1
    assert result["probe"]["episodes"] == 4 and result["probe"]["fit_episodes"] == 3
    assert -10 < result["probe"]["r2"] <= 1 and len(result["probe"]["r2_per_dim"]) == 3
    assert set(result["perturbations"]) == {"color:5", "distractors:3"}
    for key, shifted in result["perturbations"].items():
        assert shifted["name"] == key.split(":")[0] and shifted["severity"] == int(key.split(":")[1])
        assert len(shifted["returns"]) == 1 and shifted["return_mean"] < 0
        assert shifted["return_delta"] == pytest.approx(shifted["return_mean"] - result["return_mean"])
        assert shifted["probe_r2"] <= 1 and shifted["probe_r2"] != result["probe"]["r2"]
        assert shifted["probe_r2_delta"] == pytest.approx(shifted["probe_r2"] - result["probe"]["r2"])


def test_evaluate_without_perturb_writes_the_plain_report(trained):
    proc = script("evaluate", f"run_dir={trained}", "episodes=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((trained / "eval_step_000000200.json").read_text())
    assert set(result) == {"env", "checkpoint", "episodes", "return_mean", "return_std", "returns", "value_policy",
                           "reward_policy", "state_policy"}
    # the value against the return that followed, over every step but the last (Pendulum: 100 agent steps)
    assert result["value_policy"]["steps"] == 100 and -1 <= result["value_policy"]["corr"] <= 1
    assert "value vs the discounted return on these episodes" in proc.stdout
    # the reward head along the actions taken (every step but the first), and where the episode went
    assert result["reward_policy"]["steps"] == 100 and -1 <= result["reward_policy"]["corr"] <= 1
    assert "bias_top" in result["reward_policy"] and "reward head on these steps" in proc.stdout
    assert len(result["state_policy"]["mean"]) == len(result["state_policy"]["std"]) == 3
    assert not list(trained.glob("trace_*.json"))  # only with trace=true
    # with two episodes or more, the probe cross-validated over the agent's own episodes joins it
    proc = script("evaluate", f"run_dir={trained}", "episodes=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads((trained / "eval_step_000000200.json").read_text())["probe_policy"]
    assert probe["episodes"] == 2 and len(probe["r2_per_dim"]) == 3 and probe["r2"] <= 1
    assert "probe R² on these episodes (4-fold)" in proc.stdout


def test_evaluate_trace_writes_per_step_beliefs_beside_what_happened(trained):
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", "trace=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trace = json.loads((trained / "trace_step_000000200.json").read_text())
    assert trace["env"] == "Pendulum-v1" and trace["discount"] > 0 and len(trace["episodes"]) == 1
    episode = trace["episodes"][0]
    steps = len(episode["reward"])  # the reset frame and the 100 agent steps after it
    assert steps == 101 and all(len(episode[key]) == steps for key in ("action", "reward_pred", "value", "return", "state"))
    assert episode["reward_pred"][0] is None and episode["action"][0] == [0.0]  # nothing led to the first frame
    assert all(isinstance(r, float) for r in episode["reward_pred"][1:]) and episode["reward"][0] == 0.0
    # with the value check's own conventions: the return at the last step is the value there (a time limit)
    assert episode["return"][-1] == pytest.approx(episode["value"][-1])
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", "trace=true", "perturb=color:2")
    assert proc.returncode == 2 and "trace=true traces the clean episodes only" in proc.stderr


def test_evaluate_plans_with_other_search_keys_and_refuses_the_model_s(trained):
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", "samples=32", "iterations=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    wider = json.loads((trained / "eval_step_000000200__samples=32__iterations=1.json").read_text())
    assert wider["plan"] == {"samples": 32, "iterations": 1} and wider["episodes"] == 1
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", "samples=lots")
    assert proc.returncode == 2 and "samples" in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_plays_the_agent_on_another_env_with_the_same_actions(trained):
    """on_env=: a Pendulum agent (one continuous action) on MountainCarContinuous, saved apart."""
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", "on_env=MountainCarContinuous-v0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("MountainCarContinuous-v0 step_000000200: return")
    result = json.loads((trained / "eval_step_000000200__on_env=MountainCarContinuous-v0.json").read_text())
    assert result["env"] == "MountainCarContinuous-v0" and result["trained_on"] == "Pendulum-v1"
    assert result["episodes"] == 1 and len(result["state_policy"]["mean"]) == 2  # MountainCar's own state


def test_evaluate_can_act_as_in_training_with_its_exploration_noise(trained):
    """acting=training: the same episodes (seeds) played with the plan's noise on, saved apart."""
    plain = script("evaluate", f"run_dir={trained}", "episodes=2")
    noisy = script("evaluate", f"run_dir={trained}", "episodes=2", "acting=training")
    assert plain.returncode == 0 and noisy.returncode == 0, noisy.stderr[-3000:]
    clean = json.loads((trained / "eval_step_000000200.json").read_text())
    shaken = json.loads((trained / "eval_step_000000200__acting=training.json").read_text())
    assert shaken["acting"] == "training" and "acting" not in clean
    assert shaken["returns"] != clean["returns"] and shaken["episodes"] == 2
    bad = script("evaluate", f"run_dir={trained}", "episodes=1", "acting=noisy")
    assert bad.returncode == 2 and "acting='noisy' is not valid: choose eval or training" in bad.stderr


@pytest.mark.parametrize("on_env,match", [
    ("CartPole-v1", "on_env='CartPole-v1' takes discrete actions of size 2; this agent acts with continuous actions of size 1"),
    ("Pendulm-v1", "Pendulum-v1"),
])
def test_on_env_with_other_actions_or_a_misspelled_id_exits_2_naming_it(trained, on_env, match):
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", f"on_env={on_env}")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("evaluate.py: error: ") and match in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args,match", [
    (["perturb=colour:3"], "Unknown perturbation 'colour'. Did you mean 'color'? Choose one of: color, brightness"),
    (["perturb=color:2,noise:9"], "has severity 9: pass an integer in 1..5"),
    (["perturb=color:2", "probe_episodes=1"], "probe_episodes=1 must be at least 2"),
])
def test_bad_perturb_exits_2_with_one_clear_message(trained, args, match):
    proc = script("evaluate", f"run_dir={trained}", *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("evaluate.py: error: ") and match in proc.stderr and "Traceback" not in proc.stderr


def test_pixel_env_outside_dmc_refuses_the_colour_modes(trained):
    proc = script("evaluate", f"run_dir={trained}", "episodes=1", "perturb=color_hard")
    assert proc.returncode == 2, proc.stderr
    assert "recolours DeepMind Control scenes" in proc.stderr and "Traceback" not in proc.stderr


def test_dmc_colour_modes_end_to_end(tmp_path):
    pytest.importorskip("shimmy")
    run_dir = tmp_path / "run"
    proc = script("train", "env=dm_control/cartpole-swingup-v0", "preset=debug", "steps=400", "tensorboard=false",
                  "video=false", f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = script("evaluate", f"run_dir={run_dir}", "episodes=1", "probe_episodes=2", "perturb=color_hard,color:3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [report] = run_dir.glob("eval_step_*.json")
    result = json.loads(report.read_text())
    hard = result["perturbations"]["color_hard"]
    assert hard["name"] == "color_hard" and hard["severity"] == 0 and len(hard["returns"]) == 1
    # the probe was scored on the held-out episode played again in the recoloured scene: other frames
    assert hard["probe_r2"] != result["probe"]["r2"]
    assert set(result["perturbations"]) == {"color_hard", "color:3"}


def test_a_run_trained_with_novelty_reports_how_novel_its_episodes_are(tmp_path):
    run_dir = tmp_path / "curious"
    proc = script("train", "preset=debug", "steps=200", "novelty=0.5", "tensorboard=false", f"run_dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model/novelty_imagined" in (run_dir / "metrics.jsonl").read_text()
    proc = script("evaluate", f"run_dir={run_dir}", "episodes=2", "trace=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    novelty = json.loads((run_dir / "eval_step_000000200.json").read_text())["novelty_policy"]
    assert novelty["episodes"] == 2 and novelty["steps"] == 2 * 101
    assert 0 < novelty["median"] <= novelty["p90"] and novelty["start_median"] > 0
    episode = json.loads((run_dir / "trace_step_000000200.json").read_text())["episodes"][0]
    assert len(episode["novelty"]) == len(episode["reward"]) and min(episode["novelty"]) > 0
