"""Smoke tests of the benchmark scripts at tiny sizes: they run, and write a table the README can
show (into a temporary folder, via PIXELWORLD_RESULTS, so docs/results and the README stay as they are);
and they refuse a key they do not know with one error line, before writing anything."""

import json
import os
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


def test_bench_planner_times_ours_and_torchrls_planner_per_preset_and_variant(tmp_path):
    readme = (ROOT / "README.md").read_text()
    result = bench("bench_planner", tmp_path, "presets=debug,debug+samples=32", "calls=2", "compiled=false")
    rows = result["table"]["rows"]
    assert [(r[0], r[1]) for r in rows] == [(p, q) for p in ("debug", "debug+samples=32") for q in ("fp32", "bf16")]
    assert "S32" in rows[2][2] and "S64" in rows[0][2]
    for case in result["raw"]["cases"]:
        assert case["act_ms"] > 0 and case["torchrl_mppi_ms"] > 0 and case["speedup_vs_torchrl"] > 0
    assert (ROOT / "README.md").read_text() == readme
