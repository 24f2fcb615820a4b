"""Smoke tests of the benchmark scripts at tiny sizes: they run, and write a table the README can
show (into a temporary folder, via PIXELWORLD_RESULTS, so docs/results and the README stay as they are);
and they refuse a key they do not know with one error line, before writing anything."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIXELWORLD_RESULTS": str(out)}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def bench(name: str, out: Path, *args: str) -> dict:
    proc = run_script(name, out, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["bench_envs", "bench_planner", "bench_probe", "bench_replay",
                                  "bench_sample_efficiency", "bench_throughput", "bench_transfer",
                                  "bench_world_model"])
def test_bench_script_refuses_an_unknown_key_before_doing_anything(tmp_path, name):
    proc = run_script(name, tmp_path, "nosuchkey=1")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"{name}.py: error: Unknown key 'nosuchkey'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,arg,message", [
    ("bench_sample_efficiency", "seeds=0,x", "seeds='0,x': give whole numbers separated by commas"),
    ("bench_sample_efficiency", "only=Pendulum-v1:both", "only='Pendulum-v1:both': write it as only=<env>:<objective>:<seed>"),
    ("bench_sample_efficiency", "only=Pendulum-v1:both:first", "write it as only=<env>:<objective>:<seed>"),
    ("bench_transfer", "only=Pendulum-v1>CartPole-v1", "write it as only=<source>target>:<mode>:<seed>"),
    ("bench_throughput", "num_envs=one", "num_envs='one': give whole numbers"),
    ("bench_probe", "seeds=", "seeds='': give whole numbers"),
    ("bench_envs", "workers=1,,2", "workers='1,,2': give whole numbers"),
])
def test_bench_script_refuses_a_malformed_list_with_one_line(tmp_path, name, arg, message):
    proc = run_script(name, tmp_path, arg)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"{name}.py: error: " in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(tmp_path.rglob("*.json"))


def test_bench_planner_times_ours_and_torchrls_planner_per_preset_and_variant(tmp_path):
    readme = (ROOT / "README.md").read_text()
    result = bench("bench_planner", tmp_path, "presets=debug,debug+samples=32", "calls=2", "compiled=false")
    rows = result["table"]["rows"]
    assert [(r[0], r[1]) for r in rows] == [(p, q) for p in ("debug", "debug+samples=32") for q in ("fp32", "bf16")]
    assert "S32" in rows[2][2] and "S64" in rows[0][2]
    for case in result["raw"]["cases"]:
        assert case["act_ms"] > 0 and case["torchrl_mppi_ms"] > 0 and case["speedup_vs_torchrl"] > 0
    assert (ROOT / "README.md").read_text() == readme


def test_bench_sample_efficiency_piece_gets_a_final_evaluation_and_a_rerun_reproduces_it(tmp_path):
    out, runs = tmp_path / "results", tmp_path / "runs"
    args = ("preset=debug", "steps=400", "only=Pendulum-v1:contrastive:0", "final_episodes=2", f"runs={runs}")
    result = bench("bench_sample_efficiency", out, *args)
    path = out / "sample_efficiency" / "Pendulum-v1__debug__contrastive__400__0.json"
    piece = json.loads(path.read_text())
    assert [c[0] for c in piece["curve"]] == [200, 400]
    final = piece["final_eval"]
    assert final["episodes"] == 2 and len(final["returns"]) == 2 and final["checkpoint"] == "step_000000400"
    assert final["return_mean"] == pytest.approx(sum(final["returns"]) / 2)
    assert -2000 < final["return_mean"] < 0  # Pendulum's range over 200 steps
    row = result["table"]["rows"][0]
    assert "final agent, 2 episodes (mean ± 95% CI)" in result["table"]["columns"]
    assert row[result["table"]["columns"].index("final agent, 2 episodes (mean ± 95% CI)")] == f"{final['return_mean']:.0f}"

    # A piece saved without a final evaluation, its run folder gone: rerun=true trains it again into the
    # same curve (training is deterministic under a seed) and adds the same final evaluation.
    del piece["final_eval"]
    path.write_text(json.dumps(piece))
    shutil.rmtree(runs)
    skipped = run_script("bench_sample_efficiency", out, *args)
    assert skipped.returncode == 0 and "rerun=true" in skipped.stdout
    assert "final_eval" not in json.loads(path.read_text())
    bench("bench_sample_efficiency", out, *args, "rerun=true")
    again = json.loads(path.read_text())
    assert again["final_eval"]["returns"] == final["returns"]
    assert [c[2] for c in again["curve"]] == [c[2] for c in piece["curve"]]

    # A stored curve the rerun cannot reproduce: one clear error, the piece left as it was.
    del again["final_eval"]
    again["curve"][-1][2] += 1.0
    path.write_text(json.dumps(again))
    shutil.rmtree(runs)
    proc = run_script("bench_sample_efficiency", out, *args, "rerun=true")
    assert proc.returncode != 0 and "did not reproduce the stored evaluation curve" in proc.stderr
    assert json.loads(path.read_text()) == again
