"""Linear-probe R² before and after self-supervised pretraining, per objective and seed.

    python scripts/bench_probe.py [env=Pendulum-v1] [preset=cpu] [steps=1500] [seeds=0,1,2]
                                  [objectives=masked,contrastive,both] [precision=bf16]

Each (objective, seed) pair runs `scripts/pretrain.py` into `runs/bench_probe/...` and its result
is saved as its own JSON under docs/results/probe/ as soon as it finishes, so the benchmark can be
stopped and resumed: pairs with a saved result are skipped. The README table is rebuilt from
whatever results exist (mean ± 95% CI over seeds).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import results  # noqa: E402

from agents.runs import read_metrics  # noqa: E402
from worldmodel.config import parse_keys  # noqa: E402

PIECES = results.RESULTS / "probe"
KEYS = {
    "env": (str, "Pendulum-v1", "environment id"),
    "preset": (str, "cpu", "config preset of the pretraining runs"),
    "steps": (int, 1500, "pretraining updates per run"),
    "seeds": (str, "0,1,2", "seeds, comma-separated"),
    "objectives": (str, "masked,contrastive,both", "pretraining objectives, comma-separated"),
    "precision": (str, "bf16", "precision of the pretraining runs (fp32, bf16, fp16)"),
}


def run_pair(env: str, preset: str, objective: str, seed: int, steps: int, precision: str) -> dict:
    run_dir = results.ROOT / "runs" / "bench_probe" / f"{env.replace('/', '-')}__{preset}__{objective}__{seed}"
    cmd = [sys.executable, str(results.ROOT / "scripts" / "pretrain.py"), f"env={env}", f"preset={preset}",
           f"objective={objective}", f"seed={seed}", f"steps={steps}", f"eval_every={max(steps // 4, 1)}",
           f"precision={precision}", f"run_dir={run_dir}", "tensorboard=false"]
    if (run_dir / "checkpoints" / "latest").exists():
        cmd.append("resume=true")
    subprocess.run(cmd, check=True)
    records = read_metrics(run_dir / "metrics.jsonl")
    probes = [r for r in records if "probe/r2" in r]
    rates = [r["train/updates_per_second"] for r in records if "train/updates_per_second" in r]
    return {"env": env, "preset": preset, "objective": objective, "seed": seed, "steps": steps,
            "precision": precision, "r2_untrained": probes[0]["probe/r2"], "r2_trained": probes[-1]["probe/r2"],
            "r2_trained_per_dim": [v for k, v in sorted(probes[-1].items()) if k.startswith("probe/r2_dim")],
            "curve": [(r["step"], r["probe/r2"]) for r in probes], "updates_per_second": statistics.median(rates),
            "seconds": records[-1]["time"]}


def table() -> dict:
    rows, groups = [], {}
    for path in sorted(PIECES.glob("*.json")):
        r = json.loads(path.read_text())
        groups.setdefault((r["env"], r["preset"], r["objective"], r["steps"]), []).append(r)
    for (env, preset, objective, steps), runs in sorted(groups.items()):
        before = [r["r2_untrained"] for r in runs]
        after = [r["r2_trained"] for r in runs]
        dims = [statistics.mean(d) for d in zip(*(r["r2_trained_per_dim"] for r in runs))]
        rows.append([env, preset, objective, steps, len(runs),
                     results.mean_ci(before, 3), results.mean_ci(after, 3),
                     " / ".join(f"{d:.2f}" for d in dims),
                     f"{statistics.mean(r['updates_per_second'] for r in runs):.1f}"])
    return {"columns": ["env", "preset", "objective", "updates", "seeds", "probe R² untrained",
                        "probe R² pretrained", "per state dim (pretrained)", "updates/s"], "rows": rows}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_probe.py")
    env, preset = args["env"], args["preset"]
    steps, precision = args["steps"], args["precision"]
    seeds = results.int_list("seeds", args["seeds"])
    objectives = args["objectives"].split(",")
    PIECES.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for objective in objectives:
            piece = PIECES / f"{env.replace('/', '-')}__{preset}__{objective}__{steps}__{seed}.json"
            if piece.exists():
                continue
            result = run_pair(env, preset, objective, seed, steps, precision)
            piece.write_text(json.dumps(result, indent=2))
            print(f"{objective} seed {seed}: probe R² {result['r2_untrained']:.3f} -> {result['r2_trained']:.3f}",
                  flush=True)
            results.save("bench_probe", table(), {"pieces": sorted(p.name for p in PIECES.glob("*.json"))},
                         results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
