"""Sample efficiency: evaluation return vs environment steps (and wall-clock) per objective and seed.

    python scripts/bench_sample_efficiency.py [envs=Pendulum-v1,CartPole-v1] [objectives=masked,contrastive,both]
                                              [seeds=0,1,2] [preset=cpu] [steps=20000] [only=<env>:<objective>:<seed>]
    python scripts/bench_sample_efficiency.py from_run=<run folder>    # count an existing 20k-step run

Each (env, objective, seed) trains with `scripts/train.py` into runs/bench_se/...; a run stopped
midway resumes from its checkpoint the next time. Each finished run is saved as its own JSON under
docs/results/sample_efficiency/ (eval curve vs steps and vs seconds), so the benchmark fills in
piece by piece across sessions. The table (mean ± 95% CI over seeds of the last evaluation, of the
mean evaluation over the last quarter of steps, and of the best one) and a PNG plot are rebuilt
from whatever pieces exist.
Target for pixel Pendulum-v1 (optimal ≈ -150, random ≈ -1200): mean eval return >= -200 by 20k steps.

Each evaluation during training is only `eval_episodes` (3) episodes from fresh start states, so one
evaluation says little about one agent. Every finished run therefore also gets a final evaluation:
`scripts/evaluate.py` on its last checkpoint over `final_episodes` (20) episodes, from the same start
states for every piece (evaluate.py's fixed seed), stored in the piece as `final_eval` and shown in
its own column. `rerun=true` gives that final evaluation to pieces saved without one whose run
folder is gone: it trains the piece again, and keeps the result only if the new evaluation curve
equals the stored one exactly (training is deterministic under a seed on CPU); otherwise it stops
with an error and changes nothing.

`preset=cpu+samples=128+horizon=3` runs an ablation: the `cpu` preset with those config overrides,
labelled so in the run folders, the pieces' names, the table and the plot, next to the plain
preset's rows rather than mixed with them.
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

from worldmodel.config import parse_keys  # noqa: E402

PIECES = results.RESULTS / "sample_efficiency"
KEYS = {
    "envs": (str, "Pendulum-v1,CartPole-v1", "environment ids, comma-separated"),
    "objectives": (str, "masked,contrastive,both", "objectives, comma-separated"),
    "seeds": (str, "0,1,2", "seeds, comma-separated"),
    "preset": (str, "cpu", "config preset; preset+key=value+... runs an ablation with those overrides"),
    "steps": (int, 20_000, "environment steps per run"),
    "only": (str, "", "run just this piece, as <env>:<objective>:<seed> (instead of envs/objectives/seeds)"),
    "from_run": (str, "", "count this finished run folder as a piece instead of training (plain preset, same steps)"),
    "final_episodes": (int, 20, "episodes of each finished run's final evaluation (its last checkpoint); 0: none"),
    "rerun": (bool, False, "retrain pieces saved without a final evaluation whose run folder is gone; the curve must "
                           "come out identical"),
    "runs": (str, "runs/bench_se", "folder for the pieces' run folders"),
}
TARGETS = {"Pendulum-v1": -200.0}
"""The issue's target return by 20k steps, drawn as a dotted line on the plot."""


def piece_path(env: str, name: str, objective: str, steps: int, seed: int) -> Path:
    """Where one piece's JSON lives; `name` is the preset label (with any `+key=value` overrides)."""
    return PIECES / f"{env.replace('/', '-')}__{name}__{objective}__{steps}__{seed}.json"


def piece_from(run_dir: Path, env: str, objective: str, seed: int, preset: str, steps: int) -> dict:
    """The result of a finished training run folder; `preset` is its label (with any overrides)."""
    curve = results.eval_curve(run_dir, steps)
    return {"env": env, "objective": objective, "seed": seed, "preset": preset, "steps": steps, "curve": curve,
            "final_return": curve[-1][2], "seconds": curve[-1][1], "run_dir": str(run_dir)}


def run(env: str, objective: str, seed: int, name: str, steps: int, runs: Path) -> dict:
    """Train (or resume) one piece into a folder under `runs`; `name` is the preset, with any
    `+key=value` overrides."""
    preset, overrides = results.split_preset(name)
    run_dir = runs / f"{env.replace('/', '-')}__{name}__{objective}__{seed}"
    cmd = [sys.executable, str(results.ROOT / "scripts" / "train.py"), f"env={env}", f"preset={preset}",
           f"objective={objective}", f"seed={seed}", f"steps={steps}", f"run_dir={run_dir}", "exp=bench_se",
           *(f"{k}={v}" for k, v in overrides.items())]
    if (run_dir / "checkpoints" / "latest").exists():
        cmd = [sys.executable, str(results.ROOT / "scripts" / "train.py"), f"run_dir={run_dir}", "resume=true",
               f"steps={steps}"]
    subprocess.run(cmd, check=True)
    return piece_from(run_dir, env, objective, seed, name, steps)


def finished(run_dir: Path, steps: int) -> bool:
    """Whether `run_dir` still holds a run that reached `steps` environment steps, with its checkpoints."""
    if not (run_dir / "checkpoints" / "latest").exists():
        return False
    try:
        results.eval_curve(run_dir, steps)
    except SystemExit:
        return False
    return True


def final_eval(run_dir: Path, episodes: int) -> dict:
    """`scripts/evaluate.py` on the run's last checkpoint over `episodes` episodes (evaluate.py's fixed
    seed, so every piece is scored from the same start states): checkpoint, episodes, returns, mean, std."""
    subprocess.run([sys.executable, str(results.ROOT / "scripts" / "evaluate.py"), f"run_dir={run_dir}",
                    f"episodes={episodes}"], check=True)
    checkpoint = (run_dir / "checkpoints" / "latest").read_text().strip()
    report = json.loads((run_dir / f"eval_{checkpoint}.json").read_text())
    return {key: report[key] for key in ("checkpoint", "episodes", "returns", "return_mean", "return_std")}


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
    path.write_text(json.dumps(piece, indent=2))
    return True


def table_and_plot() -> dict:
    groups: dict[tuple, list[dict]] = {}
    for path in sorted(PIECES.glob("*.json")):
        piece = json.loads(path.read_text())
        groups.setdefault((piece["env"], piece["preset"], piece["objective"], piece["steps"]), []).append(piece)
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
    _plot(groups)
    counts = sorted({p["final_eval"]["episodes"] for ps in groups.values() for p in ps if "final_eval" in p})
    final_column = (f"final agent, {counts[0]} episodes" if len(counts) == 1
                    else "final agent (episodes: see pieces)") + " (mean ± 95% CI)"
    return {"columns": ["env", "preset", "objective", "env steps", "seeds", "last eval return (mean ± 95% CI)",
                        "mean eval return, last 25% of steps", "best eval return", final_column, "minutes per run"],
            "rows": rows}


def _panels(groups: dict) -> list[tuple[str, list[tuple[tuple, str, str, str]]]]:
    """What each column of the plot shows: `(title, [(group key, colour, line style, legend name)])`.
    Per env, the plain preset's objectives (colour = objective); where ablations (`preset+key=value`)
    exist, a second column sets each beside the plain preset's run of the same objective."""
    def colour(objective: str) -> str:
        return f"C{['masked', 'contrastive', 'both'].index(objective)}"

    panels = []
    for env in sorted({key[0] for key in groups}):
        keys = sorted(key for key in groups if key[0] == env)
        plain = [key for key in keys if "+" not in key[1]]
        ablations = [key for key in keys if "+" in key[1]]
        if plain:
            presets = ", ".join(sorted({key[1] for key in plain}))
            panels.append((f"{env} ({presets})", [(key, colour(key[2]), "-", key[2]) for key in plain]))
        if ablations:
            objectives = {key[2] for key in ablations}
            lines = [(key, colour(key[2]), "-", f"{key[2]}, {key[1]}") for key in plain if key[2] in objectives]
            lines += [(key, f"C{3 + i}", "--", f"{key[2]}, {key[1]}") for i, key in enumerate(ablations)]
            panels.append((f"{env}: ablations", lines))
    return panels


def _plot(groups: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(groups)
    if not panels:
        return
    fig, axes = plt.subplots(2, len(panels), figsize=(5 * len(panels), 7), squeeze=False)
    for col, (title, lines) in enumerate(panels):
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
    fig.savefig(results.RESULTS / "sample_efficiency.png", dpi=90)
    plt.close(fig)


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_sample_efficiency.py")
    name, steps = args["preset"], args["steps"]
    runs = (results.ROOT / args["runs"]).resolve()
    if args["final_episodes"] < 0:
        raise SystemExit("bench_sample_efficiency.py: error: final_episodes must be 0 (none) or more.")
    preset, overrides = results.split_preset(name)
    PIECES.mkdir(parents=True, exist_ok=True)
    if args["from_run"]:
        # A run trained outside the benchmark (e.g. the README's main command) counts as a piece when
        # its config is exactly what the benchmark would have run.
        run_dir = Path(args["from_run"])
        cfg = json.loads((run_dir / "config.json").read_text())
        if overrides:
            raise SystemExit(f"from_run counts runs of a plain preset, not of {name}.")
        if cfg["preset"] != preset or cfg["steps"] != steps:
            raise SystemExit(f"{run_dir} ran preset={cfg['preset']} steps={cfg['steps']}, not {preset}/{steps}.")
        result = piece_from(run_dir, cfg["env"], cfg["objective"], cfg["seed"], preset, steps)
        if args["final_episodes"]:
            result["final_eval"] = final_eval(run_dir, args["final_episodes"])
        piece_path(cfg["env"], preset, cfg["objective"], steps, cfg["seed"]).write_text(json.dumps(result, indent=2))
        save_table()
        return
    if args["only"]:
        env, objective, seed = results.parts("only", args["only"], ("env", "objective", "seed"))
        jobs = [(env, objective, int(seed))]
    else:
        jobs = [(env, objective, int(seed))
                for seed in results.int_list("seeds", args["seeds"])
                for env in args["envs"].split(",")
                for objective in args["objectives"].split(",")]
    for env, objective, seed in jobs:
        piece = piece_path(env, name, objective, steps, seed)
        if piece.exists():
            if args["final_episodes"] and "final_eval" not in json.loads(piece.read_text()):
                if add_final_eval(piece, args["final_episodes"], args["rerun"], runs):
                    save_table()
            continue
        result = run(env, objective, seed, name, steps, runs)
        if args["final_episodes"]:
            result["final_eval"] = final_eval(Path(result["run_dir"]), args["final_episodes"])
        piece.write_text(json.dumps(result, indent=2))
        print(f"{env} {objective} seed {seed}: final eval return {result['final_return']:.1f}", flush=True)
        save_table()
    save_table()  # also when every piece already existed (e.g. pieces copied in from another checkout)


def save_table() -> None:
    results.save("bench_sample_efficiency", table_and_plot(), {"pieces": sorted(p.name for p in PIECES.glob("*.json"))},
                 results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
