"""Transfer efficiency (`scripts/bench_transfer.py`): what a pretrained encoder buys on a new
environment, against training from scratch, piece by piece.

    fill_piece("Pendulum-v1>CartPole-v1", "frozen", seed=0, preset="cpu", steps=10_000, pretrain_updates=2000)
    save_table()                    # the table and docs/results/transfer.png, from every piece

Each (pair, mode, seed) trains on the target with `scripts/transfer.py` (a stopped piece resumes)
and is saved as its own JSON under `PIECES`; see the script for what the columns report.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from agents.analysis import results
from agents.analysis.metrics import read_metrics
from agents.analysis.plots import pyplot, save_figure

PIECES = results.RESULTS / "transfer"
"""Where each finished piece is saved."""
RUNS = results.ROOT / "runs" / "bench_transfer"
"""Where the source encoders' pretraining runs and the pieces' target runs go."""
PLOT = results.RESULTS / "transfer.png"
THRESHOLDS = {"Pendulum-v1": -400.0, "CartPole-v1": 100.0, "Acrobot-v1": -200.0, "MountainCarContinuous-v0": 0.0}
"""Evaluation return that counts as "learned" on each target (Pendulum: swung up and mostly held)."""
MODES = {"scratch": 0, "frozen": 1, "finetune": 2, "init": 3}
"""Encoder modes in table order."""
COLOURS = {"scratch": "C7", "frozen": "C0", "finetune": "C1", "init": "C2"}


def pretrained_source(env: str, preset: str, updates: int) -> Path:
    """A pretraining run folder for `env` (made, or resumed, on first use)."""
    run_dir = RUNS / f"source__{results.slug(env)}__{preset}__{updates}"
    if (run_dir / "encoder.pt").is_file():
        return run_dir
    if results.resumable(run_dir):
        results.run_script("pretrain", f"run_dir={run_dir}", "resume=true", f"pretrain_updates={updates}")
    else:
        results.run_script("pretrain", f"env={env}", f"preset={preset}", f"pretrain_updates={updates}",
                           f"run_dir={run_dir}", "seed=0")
    return run_dir


def piece_name(pair: str, mode: str, seed: int, preset: str, steps: int) -> str:
    """The name of a piece's JSON (under `PIECES`) and of its run folder (under `RUNS`); `pair` is
    `source>target`."""
    source_env, target = pair.split(">")
    return f"{results.slug(source_env)}__{results.slug(target)}__{preset}__{mode}__{steps}__{seed}"


def train_piece(source: Path | None, target: str, mode: str, seed: int, preset: str, steps: int, name: str) -> dict:
    """Train (or resume) one piece on `target` with the encoder of `source` (None: from scratch)."""
    run_dir = RUNS / name
    if results.resumable(run_dir):
        results.run_script("transfer", f"run_dir={run_dir}", "resume=true", f"steps={steps}")
    else:
        args = [f"env={target}", f"preset={preset}", f"mode={mode}", f"seed={seed}", f"steps={steps}",
                f"run_dir={run_dir}", "eval_every=1000", "video=false"]
        if mode != "scratch":
            args.append(f"encoder={source}")
        results.run_script("transfer", *args)
    records = read_metrics(run_dir / "metrics.jsonl")
    probe = next((r["probe/r2"] for r in records if "probe/r2" in r), None)
    curve = results.eval_curve(run_dir, steps)
    return {"target": target, "mode": mode, "seed": seed, "preset": preset, "steps": steps, "curve": curve,
            "probe_r2": probe, "final_return": curve[-1][2], "seconds": curve[-1][1],
            "source": None if source is None else str(source.relative_to(results.ROOT)) if source.is_relative_to(
                results.ROOT) else str(source)}


def fill_piece(pair: str, mode: str, seed: int, preset: str, steps: int, pretrain_updates: int,
               source_run: str = "") -> bool:
    """Train and save the piece unless it is saved. Its encoder (not for `scratch`) comes from
    `source_run` when given, else from the source env's pretraining run (`pretrained_source`, made
    with `pretrain_updates` the first time a piece needs it). Whether it was trained."""
    name = piece_name(pair, mode, seed, preset, steps)
    if (PIECES / f"{name}.json").exists():
        return False
    source_env, target = pair.split(">")
    label = f"{source_env} > {target}"
    source = None
    if mode != "scratch":
        source = Path(source_run) if source_run else pretrained_source(source_env, preset, pretrain_updates)
    piece = {"pair": label, **train_piece(source, target, mode, seed, preset, steps, name)}
    results.write_piece(PIECES / f"{name}.json", piece)
    print(f"{label} {mode} seed {seed}: final eval return {piece['final_return']:.1f}", flush=True)
    return True


def returns_of(curve: list) -> list[tuple[int, float]]:
    """A piece's curve of (step, seconds, return) as (step, return) points."""
    return [(step, ret) for step, _, ret in curve]


def load_groups() -> dict[tuple, list[dict]]:
    """The saved pieces by (pair, preset, steps, mode), the seeds of each group in file order."""
    return results.load_pieces(PIECES, lambda p: (p["pair"], p["preset"], p["steps"], p["mode"]))


def table(groups: dict[tuple, list[dict]]) -> dict:
    """README table: per pair and mode, over seeds, the probe R² before training, steps to the
    target's threshold, the AUC, both relative to scratch, and the last evaluation."""
    rows = []
    for (pair, preset, steps, mode), pieces in sorted(groups.items(), key=lambda kv: (kv[0][:3], MODES[kv[0][3]])):
        target = pieces[0]["target"]
        threshold = THRESHOLDS.get(target, 0.0)
        reached = [s for s in (results.frames_to(returns_of(p["curve"]), threshold) for p in pieces) if s is not None]
        areas = [results.curve_auc(returns_of(p["curve"])) for p in pieces]
        scratch = groups.get((pair, preset, steps, "scratch"), [])
        scratch_steps = [s for s in (results.frames_to(returns_of(p["curve"]), threshold) for p in scratch)
                         if s is not None]
        speedup = (f"{statistics.mean(scratch_steps) / statistics.mean(reached):.2f}×"
                   if reached and scratch_steps and mode != "scratch" else "–")
        scratch_areas = [results.curve_auc(returns_of(p["curve"])) for p in scratch]
        delta = (f"{statistics.mean(areas) - statistics.mean(scratch_areas):+.0f}"
                 if scratch and mode != "scratch" else "–")
        probes = [p["probe_r2"] for p in pieces if p["probe_r2"] is not None]
        rows.append([pair, mode, len(pieces), results.mean_ci(probes, 2), f"{threshold:g}",
                     f"{statistics.mean(reached):,.0f} ({len(reached)}/{len(pieces)})" if reached else f"– (0/{len(pieces)})",
                     speedup, results.mean_ci(areas), delta, results.mean_ci([p["final_return"] for p in pieces]),
                     f"{statistics.mean(p['seconds'] for p in pieces) / 60:.0f}"])
    return {"columns": ["source > target", "encoder", "seeds", "probe R² before training", "threshold",
                        "steps to threshold (seeds reaching it)", "speed-up vs scratch", "AUC (mean eval return)",
                        "ΔAUC vs scratch", "last eval return", "minutes per run"], "rows": rows}


def plot(groups: dict, path: Path = PLOT) -> Path | None:
    """Eval return vs environment steps, one panel per pair, one line per seed coloured by mode,
    the target's threshold dotted. None (nothing written) when there are no pieces."""
    pairs = sorted({key[0] for key in groups})
    if not pairs:
        return None
    fig, axes = pyplot().subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        for (p_, _, _, mode), pieces in sorted(groups.items()):
            if p_ != pair:
                continue
            for i, p in enumerate(pieces):
                ax.plot([c[0] for c in p["curve"]], [c[2] for c in p["curve"]], color=COLOURS.get(mode, "C3"),
                        alpha=0.8, label=mode if i == 0 else None)
        target = pair.split(" > ")[1]
        ax.axhline(THRESHOLDS.get(target, 0.0), color="k", lw=0.8, ls=":")
        ax.set_title(pair)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("eval return")
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def save_table() -> None:
    """Rebuild the plot and docs/results/bench_transfer.json (and the README table) from every piece there is."""
    groups = load_groups()
    plot(groups)
    results.save("bench_transfer", table(groups), results.piece_names(PIECES), results.command_line())
