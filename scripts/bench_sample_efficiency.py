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

import sys
from pathlib import Path

from agents.analysis import results
from agents.analysis.bench import sample_efficiency
from worldmodel.cli import parse_keys

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


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_sample_efficiency.py")
    name, steps = args["preset"], args["steps"]
    runs = (results.ROOT / args["runs"]).resolve()
    if args["final_episodes"] < 0:
        raise SystemExit("bench_sample_efficiency.py: error: final_episodes must be 0 (none) or more.")
    preset, overrides = results.split_preset(name)
    if args["from_run"]:
        if overrides:
            raise SystemExit(f"from_run counts runs of a plain preset, not of {name}.")
        sample_efficiency.count_run(Path(args["from_run"]), preset, steps, args["final_episodes"])
        sample_efficiency.save_table()
        return
    jobs = results.piece_jobs(args["only"], args["seeds"], args["envs"].split(","), args["objectives"].split(","),
                              ("env", "objective"))
    for env, objective, seed in jobs:
        if sample_efficiency.fill_piece(env, objective, seed, name, steps, args["final_episodes"], args["rerun"], runs):
            sample_efficiency.save_table()
    sample_efficiency.save_table()  # also when every piece already existed (e.g. pieces copied in from another checkout)


if __name__ == "__main__":
    main(sys.argv[1:])
