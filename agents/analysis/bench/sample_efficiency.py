"""Sample efficiency (`scripts/bench_sample_efficiency.py`): evaluation return vs environment steps
(and wall-clock) per env, objective and seed, piece by piece.

    changed = fill_piece("Pendulum-v1", "both", seed=0, name="cpu", steps=20_000, final_episodes=20,
                         rerun=False, runs=Path("runs/bench_se"))
    save_table()                     # the table and docs/results/sample_efficiency.png, from every piece

Each piece trains with `scripts/train.py` (a stopped run resumes) and is saved as its own JSON
under `PIECES`; every finished run also gets a final evaluation, `scripts/evaluate.py` on its last
checkpoint (see the script for what the columns and the plot show). A piece's `name` is its preset
label, with any `+key=value` overrides of an ablation.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from agents.analysis import results
from agents.analysis.plots import pyplot, save_figure

PIECES = results.RESULTS / "sample_efficiency"
"""Where each finished piece is saved."""
PLOT = results.RESULTS / "sample_efficiency.png"
TARGETS = {"Pendulum-v1": -200.0}
"""The issue's target return by 20k steps, drawn as a dotted line on the plot."""
OBJECTIVES = ("masked", "contrastive", "both")
"""Objectives in colour order (C0, C1, C2); ablations take C3 onwards."""


def piece_path(env: str, name: str, objective: str, steps: int, seed: int) -> Path:
    """Where one piece's JSON lives; `name` is the preset label (with any `+key=value` overrides)."""
    return PIECES / f"{results.slug(env)}__{name}__{objective}__{steps}__{seed}.json"


def piece_from(run_dir: Path, env: str, objective: str, seed: int, preset: str, steps: int) -> dict:
    """The result of a finished training run folder; `preset` is its label (with any overrides)."""
    curve = results.eval_curve(run_dir, steps)
    return {"env": env, "objective": objective, "seed": seed, "preset": preset, "steps": steps, "curve": curve,
            "final_return": curve[-1][2], "seconds": curve[-1][1], "run_dir": str(run_dir)}


def run(env: str, objective: str, seed: int, name: str, steps: int, runs: Path) -> dict:
    """Train (or resume) one piece into a folder under `runs`; `name` is the preset, with any
    `+key=value` overrides."""
    preset, overrides = results.split_preset(name)
    run_dir = runs / f"{results.slug(env)}__{name}__{objective}__{seed}"
    if results.resumable(run_dir):
        results.run_script("train", f"run_dir={run_dir}", "resume=true", f"steps={steps}")
    else:
        results.run_script("train", f"env={env}", f"preset={preset}", f"objective={objective}", f"seed={seed}",
                           f"steps={steps}", f"run_dir={run_dir}", "exp=bench_se",
                           *(f"{k}={v}" for k, v in overrides.items()))
    return piece_from(run_dir, env, objective, seed, name, steps)


def finished(run_dir: Path, steps: int) -> bool:
    """Whether `run_dir` still holds a run that reached `steps` environment steps, with its checkpoints."""
    if not results.resumable(run_dir):
        return False
    try:
        results.eval_curve(run_dir, steps)
    except SystemExit:
        return False
    return True


def final_eval(run_dir: Path, episodes: int, acting: str = "eval") -> dict:
    """`scripts/evaluate.py` on the run's last checkpoint over `episodes` episodes (evaluate.py's fixed
    seed, so every piece is scored from the same start states): checkpoint, episodes, returns, mean, std.
    `acting="training"`: the same episodes with training's exploration noise (evaluate.py's `acting`)."""
    results.run_script("evaluate", f"run_dir={run_dir}", f"episodes={episodes}",
                       *([f"acting={acting}"] if acting != "eval" else []))
    checkpoint = (run_dir / "checkpoints" / "latest").read_text().strip()
    suffix = f"__acting={acting}" if acting != "eval" else ""
    report = json.loads((run_dir / f"eval_{checkpoint}{suffix}.json").read_text())
    keys = ("checkpoint", "episodes", "returns", "return_mean", "return_std", "probe_policy", "value_policy",
            "reward_policy", "state_policy")
    return {key: report[key] for key in keys if key in report}


def add_final_eval(path: Path, episodes: int, rerun: bool, runs: Path) -> bool:
    """Give the saved piece at `path` its final evaluation: from its run folder when that still holds
    the finished run, else (with `rerun`) by training it again, which must reproduce the stored curve.
    Whether the piece changed."""
    piece = json.loads(path.read_text())
    run_dir = Path(piece["run_dir"])
    if not finished(run_dir, piece["steps"]):
        if not rerun:
            print(f"{path.name}: no final evaluation and its run folder is gone; rerun=true trains it again.")
            return False
        again = run(piece["env"], piece["objective"], piece["seed"], piece["preset"], piece["steps"], runs)
        stored = [(step, ret) for step, _, ret in piece["curve"]]
        if [(step, ret) for step, _, ret in again["curve"]] != stored:
            raise SystemExit(f"{path.name}: the rerun in {again['run_dir']} did not reproduce the stored evaluation "
                             "curve, so the piece is left as it was. Compare the two curves; a code change since "
                             "the piece was saved, a run on more than one thread, or a rerun that was stopped and "
                             "resumed (episodes in flight restart) are the usual causes.")
        run_dir = Path(again["run_dir"])
        piece["rerun_dir"] = str(run_dir)
    piece["final_eval"] = final_eval(run_dir, episodes)
    results.write_piece(path, piece)
    return True


def fill_piece(env: str, objective: str, seed: int, name: str, steps: int, final_episodes: int, rerun: bool,
               runs: Path) -> bool:
    """Make sure the piece exists: train it (and evaluate it over `final_episodes`, 0: not) unless it
    is saved; a saved piece without a final evaluation gets one (`add_final_eval`). Whether it changed."""
    piece = piece_path(env, name, objective, steps, seed)
    if piece.exists():
        if final_episodes and "final_eval" not in json.loads(piece.read_text()):
            return add_final_eval(piece, final_episodes, rerun, runs)
        return False
    result = run(env, objective, seed, name, steps, runs)
    if final_episodes:
        result["final_eval"] = final_eval(Path(result["run_dir"]), final_episodes)
    results.write_piece(piece, result)
    print(f"{env} {objective} seed {seed}: final eval return {result['final_return']:.1f}", flush=True)
    return True


def count_run(run_dir: Path, preset: str, steps: int, final_episodes: int) -> None:
    """Save a run trained outside the benchmark (e.g. the README's main command) as a piece, when
    its config is exactly what the benchmark would have run: plain `preset`, `steps` steps."""
    cfg = json.loads((run_dir / "config.json").read_text())
    if cfg["preset"] != preset or cfg["steps"] != steps:
        raise SystemExit(f"{run_dir} ran preset={cfg['preset']} steps={cfg['steps']}, not {preset}/{steps}.")
    result = piece_from(run_dir, cfg["env"], cfg["objective"], cfg["seed"], preset, steps)
    if final_episodes:
        result["final_eval"] = final_eval(run_dir, final_episodes)
    results.write_piece(piece_path(cfg["env"], preset, cfg["objective"], steps, cfg["seed"]), result)


def load_groups() -> dict[tuple, list[dict]]:
    """The saved pieces by (env, preset, objective, steps), the seeds of each group in file order."""
    return results.load_pieces(PIECES, lambda p: (p["env"], p["preset"], p["objective"], p["steps"]))


def table(groups: dict[tuple, list[dict]]) -> dict:
    """README table: one row per group, mean ± 95% CI over its seeds of the last evaluation, of the
    mean evaluation over the last quarter of steps, of the best one and of the final agents."""
    rows = []
    for (env, preset, objective, steps), pieces in sorted(groups.items()):
        finals = [p["final_return"] for p in pieces]
        # The final agent over many episodes: what each seed's agent is worth, less the luck of 3 starts.
        scored = [p["final_eval"]["return_mean"] for p in pieces if "final_eval" in p]
        final_cell = results.mean_ci(scored) + (f" ({len(scored)} of {len(pieces)} seeds)"
                                                 if 0 < len(scored) < len(pieces) else "")
        # Each evaluation is only a few episodes: the mean over the last quarter of training is steadier.
        late = [statistics.mean(c[2] for c in p["curve"] if c[0] > 0.75 * steps) for p in pieces]
        # The best evaluation shows what the agent reached, next to whether it held it.
        best = [max(c[2] for c in p["curve"]) for p in pieces]
        minutes = statistics.mean(p["seconds"] for p in pieces) / 60
        rows.append([env, preset, objective, f"{steps:,}", len(pieces),
                     results.mean_ci(finals), results.mean_ci(late), results.mean_ci(best), final_cell,
                     f"{minutes:.0f}"])
    counts = sorted({p["final_eval"]["episodes"] for ps in groups.values() for p in ps if "final_eval" in p})
    final_column = (f"final agent, {counts[0]} episodes" if len(counts) == 1
                    else "final agent (episodes: see pieces)") + " (mean ± 95% CI)"
    return {"columns": ["env", "preset", "objective", "env steps", "seeds", "last eval return (mean ± 95% CI)",
                        "mean eval return, last 25% of steps", "best eval return", final_column, "minutes per run"],
            "rows": rows}


def panels(groups: dict) -> list[tuple[str, list[tuple[tuple, str, str, str]]]]:
    """What each column of the plot shows: `(title, [(group key, colour, line style, legend name)])`.
    Per env, the plain preset's objectives (colour = objective); where ablations (`preset+key=value`)
    exist, a second column sets each beside the plain preset's run of the same objective."""
    def colour(objective: str) -> str:
        return f"C{OBJECTIVES.index(objective)}"

    out = []
    for env in sorted({key[0] for key in groups}):
        keys = sorted(key for key in groups if key[0] == env)
        plain = [key for key in keys if "+" not in key[1]]
        ablations = [key for key in keys if "+" in key[1]]
        if plain:
            presets = ", ".join(sorted({key[1] for key in plain}))
            out.append((f"{env} ({presets})", [(key, colour(key[2]), "-", key[2]) for key in plain]))
        if ablations:
            objectives = {key[2] for key in ablations}
            lines = [(key, colour(key[2]), "-", f"{key[2]}, {key[1]}") for key in plain if key[2] in objectives]
            lines += [(key, f"C{3 + i}", "--", f"{key[2]}, {key[1]}") for i, key in enumerate(ablations)]
            out.append((f"{env}: ablations", lines))
    return out


def plot(groups: dict, path: Path = PLOT) -> Path | None:
    """Eval return vs environment steps (top row) and seconds (bottom row), one column per
    `panels` entry: each seed thin, the mean over seeds bold, the final agents' mean ± 95% CI as
    a diamond at the end, the target dotted. None (nothing written) when there are no pieces."""
    columns = panels(groups)
    if not columns:
        return None
    fig, axes = pyplot().subplots(2, len(columns), figsize=(5 * len(columns), 7), squeeze=False)
    for col, (title, lines) in enumerate(columns):
        for key, color, style, name in lines:
            pieces = groups[key]
            for row, x_index, xlabel in ((0, 0, "environment steps"), (1, 1, "seconds")):
                ax = axes[row][col]
                for p in pieces:  # each seed thin, the mean over seeds bold (at the steps all seeds share)
                    ax.plot([c[x_index] for c in p["curve"]], [c[2] for c in p["curve"]], color=color, alpha=0.3,
                            linewidth=0.8, linestyle=style)
                shared = min(len(p["curve"]) for p in pieces)
                mean = [[statistics.mean(p["curve"][i][k] for p in pieces) for i in range(shared)] for k in (x_index, 2)]
                ax.plot(*mean, color=color, linewidth=2, linestyle=style, label=f"{name} (mean of {len(pieces)})")
                finals = [p for p in pieces if "final_eval" in p]
                if finals:  # the final agents over final_episodes each: their mean and 95% CI, at the end
                    values = [p["final_eval"]["return_mean"] for p in finals]
                    ax.errorbar(mean[0][-1], statistics.mean(values),
                                yerr=results.ci95(values), color=color, marker="D", markersize=5, capsize=3)
                if key[0] in TARGETS:
                    ax.axhline(TARGETS[key[0]], color="gray", linestyle=":", linewidth=1)
                ax.set_xlabel(xlabel)
                ax.set_ylabel("eval return")
                ax.set_title(title)
                ax.legend(fontsize=7)
    fig.suptitle("lines: 3-episode evaluations during training; diamonds: final agents over final_episodes "
                 "(mean ± 95% CI over seeds)", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def save_table() -> None:
    """Rebuild the plot and docs/results/bench_sample_efficiency.json (and the README table) from
    every piece there is."""
    groups = load_groups()
    plot(groups)
    results.save("bench_sample_efficiency", table(groups), results.piece_names(PIECES), results.command_line())
