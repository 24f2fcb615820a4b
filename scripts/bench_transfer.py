"""Transfer efficiency: what a pretrained encoder buys on a new environment, against training from scratch.

    python scripts/bench_transfer.py [pairs=Pendulum-v1>CartPole-v1,CartPole-v1>Pendulum-v1]
                                     [modes=scratch,frozen,finetune] [seeds=0,1,2] [steps=10000] [preset=cpu]
                                     [pretrain_updates=2000] [only=<source>><target>:<mode>:<seed>]
                                     [source_run=<run folder>]   # use this encoder instead of pretraining one

For each source env an encoder is pretrained once (`scripts/pretrain.py`, random-action data, the
preset's objective) into runs/bench_transfer/, unless `source_run=` names a run to take it from.
Each (pair, mode, seed) then trains on the target with `scripts/transfer.py` and is saved as its own
JSON under docs/results/transfer/, so the benchmark fills in piece by piece (a stopped piece resumes).

Reported per pair and mode, over seeds: `probe/r2` of the encoder on the target before training;
environment steps until the evaluation return first reaches the target's threshold (and how many
seeds got there); the area under the evaluation curve (mean return over training); both relative
to scratch (speed-up = scratch steps / mode steps, ΔAUC = AUC - scratch AUC); the last evaluation.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import results  # noqa: E402

from agents.runs import read_metrics  # noqa: E402
from worldmodel.config import parse_keys  # noqa: E402

PIECES = results.RESULTS / "transfer"
RUNS = results.ROOT / "runs" / "bench_transfer"
THRESHOLDS = {"Pendulum-v1": -400.0, "CartPole-v1": 100.0, "Acrobot-v1": -200.0, "MountainCarContinuous-v0": 0.0}
"""Evaluation return that counts as "learned" on each target (Pendulum: swung up and mostly held)."""
KEYS = {
    "pairs": (str, "Pendulum-v1>CartPole-v1,CartPole-v1>Pendulum-v1", "source>target env pairs, comma-separated"),
    "modes": (str, "scratch,frozen,finetune", "encoder modes on the target, comma-separated"),
    "seeds": (str, "0,1,2", "seeds, comma-separated"),
    "steps": (int, 10_000, "environment steps per target run"),
    "preset": (str, "cpu", "config preset of the source and target runs"),
    "pretrain_updates": (int, 2_000, "pretraining updates of each source encoder"),
    "only": (str, "", "run just this piece, as <source>><target>:<mode>:<seed> (instead of pairs/modes/seeds)"),
    "source_run": (str, "", "take the encoder from this run folder instead of pretraining one"),
}


def _slug(env: str) -> str:
    return env.replace("/", "-")


def pretrained_source(env: str, preset: str, updates: int) -> Path:
    """A pretraining run folder for `env` (made, or resumed, on first use)."""
    run_dir = RUNS / f"source__{_slug(env)}__{preset}__{updates}"
    script = [sys.executable, str(results.ROOT / "scripts" / "pretrain.py")]
    if (run_dir / "encoder.pt").is_file():
        return run_dir
    if (run_dir / "checkpoints" / "latest").exists():
        cmd = [*script, f"run_dir={run_dir}", "resume=true", f"steps={updates}"]
    else:
        cmd = [*script, f"env={env}", f"preset={preset}", f"steps={updates}", f"run_dir={run_dir}", "seed=0"]
    subprocess.run(cmd, check=True)
    return run_dir


def train_piece(source: Path | None, target: str, mode: str, seed: int, preset: str, steps: int, name: str) -> dict:
    run_dir = RUNS / name
    script = [sys.executable, str(results.ROOT / "scripts" / "transfer.py")]
    if (run_dir / "checkpoints" / "latest").exists():
        cmd = [*script, f"run_dir={run_dir}", "resume=true", f"steps={steps}"]
    else:
        cmd = [*script, f"env={target}", f"preset={preset}", f"mode={mode}", f"seed={seed}", f"steps={steps}",
               f"run_dir={run_dir}", "eval_every=1000", "video=false"]
        if mode != "scratch":
            cmd.append(f"encoder={source}")
    subprocess.run(cmd, check=True)
    records = read_metrics(run_dir / "metrics.jsonl")
    probe = next((r["probe/r2"] for r in records if "probe/r2" in r), None)
    curve = results.eval_curve(run_dir, steps)
    return {"target": target, "mode": mode, "seed": seed, "preset": preset, "steps": steps, "curve": curve,
            "probe_r2": probe, "final_return": curve[-1][2], "seconds": curve[-1][1],
            "source": None if source is None else str(source.relative_to(results.ROOT)) if source.is_relative_to(
                results.ROOT) else str(source)}


def steps_to(curve: list, threshold: float) -> int | None:
    """First evaluation step whose return reaches `threshold` (None if none does)."""
    return next((step for step, _, ret in curve if ret >= threshold), None)


def auc(curve: list) -> float:
    """Mean evaluation return over training (trapezoids between evaluations, from the first one)."""
    if len(curve) < 2:
        return curve[0][2]
    area = sum((b[0] - a[0]) * (a[2] + b[2]) / 2 for a, b in zip(curve, curve[1:]))
    return area / (curve[-1][0] - curve[0][0])


def table_and_plot() -> dict:
    groups: dict[tuple, list[dict]] = {}
    for path in sorted(PIECES.glob("*.json")):
        p = json.loads(path.read_text())
        groups.setdefault((p["pair"], p["preset"], p["steps"], p["mode"]), []).append(p)
    rows = []
    order = {"scratch": 0, "frozen": 1, "finetune": 2, "init": 3}
    for (pair, preset, steps, mode), pieces in sorted(groups.items(), key=lambda kv: (kv[0][:3], order[kv[0][3]])):
        target = pieces[0]["target"]
        threshold = THRESHOLDS.get(target, 0.0)
        reached = [s for s in (steps_to(p["curve"], threshold) for p in pieces) if s is not None]
        areas = [auc(p["curve"]) for p in pieces]
        scratch = groups.get((pair, preset, steps, "scratch"), [])
        scratch_steps = [s for s in (steps_to(p["curve"], threshold) for p in scratch) if s is not None]
        speedup = (f"{statistics.mean(scratch_steps) / statistics.mean(reached):.2f}×"
                   if reached and scratch_steps and mode != "scratch" else "–")
        delta = (f"{statistics.mean(areas) - statistics.mean(auc(p['curve']) for p in scratch):+.0f}"
                 if scratch and mode != "scratch" else "–")
        probes = [p["probe_r2"] for p in pieces if p["probe_r2"] is not None]
        rows.append([pair, mode, len(pieces), results.mean_ci(probes, 2), f"{threshold:g}",
                     f"{statistics.mean(reached):,.0f} ({len(reached)}/{len(pieces)})" if reached else f"– (0/{len(pieces)})",
                     speedup, results.mean_ci(areas), delta, results.mean_ci([p["final_return"] for p in pieces]),
                     f"{statistics.mean(p['seconds'] for p in pieces) / 60:.0f}"])
    _plot(groups)
    return {"columns": ["source > target", "encoder", "seeds", "probe R² before training", "threshold",
                        "steps to threshold (seeds reaching it)", "speed-up vs scratch", "AUC (mean eval return)",
                        "ΔAUC vs scratch", "last eval return", "minutes per run"], "rows": rows}


def _plot(groups: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = sorted({key[0] for key in groups})
    if not pairs:
        return
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4), squeeze=False)
    colours = {"scratch": "C7", "frozen": "C0", "finetune": "C1", "init": "C2"}
    for ax, pair in zip(axes[0], pairs):
        for (p_, _, _, mode), pieces in sorted(groups.items()):
            if p_ != pair:
                continue
            for i, p in enumerate(pieces):
                ax.plot([c[0] for c in p["curve"]], [c[2] for c in p["curve"]], color=colours.get(mode, "C3"),
                        alpha=0.8, label=mode if i == 0 else None)
        target = pair.split(" > ")[1]
        ax.axhline(THRESHOLDS.get(target, 0.0), color="k", lw=0.8, ls=":")
        ax.set_title(pair)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("eval return")
        ax.legend()
    fig.tight_layout()
    fig.savefig(results.RESULTS / "transfer.png", dpi=90)
    plt.close(fig)


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_transfer.py")
    preset, steps = args["preset"], args["steps"]
    updates = args["pretrain_updates"]
    if args["only"]:
        pair, mode, seed = results.parts("only", args["only"], ("source>target", "mode", "seed"))
        jobs = [(pair, mode, int(seed))]
    else:
        jobs = [(pair, mode, int(seed))
                for seed in results.int_list("seeds", args["seeds"])
                for pair in args["pairs"].split(",")
                for mode in args["modes"].split(",")]
    PIECES.mkdir(parents=True, exist_ok=True)
    for pair, mode, seed in jobs:
        source_env, target = pair.split(">")
        label = f"{source_env} > {target}"
        name = f"{_slug(source_env)}__{_slug(target)}__{preset}__{mode}__{steps}__{seed}"
        if (PIECES / f"{name}.json").exists():
            continue
        source = None
        if mode != "scratch":
            source = Path(args["source_run"]) if args["source_run"] else pretrained_source(source_env, preset, updates)
        piece = {"pair": label, **train_piece(source, target, mode, seed, preset, steps, name)}
        (PIECES / f"{name}.json").write_text(json.dumps(piece, indent=2))
        print(f"{label} {mode} seed {seed}: final eval return {piece['final_return']:.1f}", flush=True)
        _save()
    _save()  # the table and plot from every piece there is (also when all were already done)


def _save() -> None:
    results.save("bench_transfer", table_and_plot(), {"pieces": sorted(p.name for p in PIECES.glob("*.json"))},
                 results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
