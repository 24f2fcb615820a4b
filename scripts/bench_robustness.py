"""Out-of-distribution robustness of a trained agent: return and linear-probe R² under every
perturbation of `envs/perturb.py` at severities 1, 3 and 5, next to the clean numbers.

    python scripts/bench_robustness.py [run_dir=runs/main_cpu_pendulum] [episodes=10] [probe_episodes=8]
                                       [severities=1,3,5] [seed=12345] [checkpoint=latest]

The same evaluation as `scripts/evaluate.py perturb=...` (`agents.analysis.robustness.robustness`): paired
seeds for clean and perturbed episodes, and the probe scored on the same held-out episodes with and
without the perturbation. A DeepMind Control run also gets the physics-level colour modes
(`envs/dmc_colors.py`: DMC-GB's `color_easy` and `color_hard`, and our harder `color_all_easy` and
`color_all_hard`), its probe episodes played again in the recoloured scene. Saves
docs/results/bench_robustness.json and rebuilds the README table.

    python scripts/bench_robustness.py run_dir=runs/bench_dmc/<task>__<variant>__100000__<seed> piece=true
    python scripts/bench_robustness.py table=true      # rebuild that table from the saved pieces

`piece=true` (a DeepMind Control run of bench_dmc.py) saves the report as one piece of the DMC
robustness benchmark instead, docs/results/robustness_dmc/<task>__<variant>__<seed>.json (task,
variant and seed read from the bench_dmc run folder's name), at severity 3 unless `severities=`
says otherwise, and rebuilds its table `bench_robustness_dmc`: per task and variant, over seeds,
the clean return and each condition's return as a share of it, and the probe R² clean and under
each colour mode, beside DrQ's, SODA's and SVEA's published color_hard returns (SGQN publishes
none: its table is DMC-GB's video modes).
"""

from __future__ import annotations

import sys

from agents.analysis import results
from agents.analysis.bench import robustness as dmc_robustness
from agents.analysis.bench.robustness import robustness_table
from agents.analysis.robustness import format_table, robustness
from agents.training.assembly import load_run
from envs import COLOR_MODES, PERTURBATIONS, EnvError, parse_perturbations
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import parse_keys
from worldmodel.config import ConfigError

KEYS = {
    "run_dir": (str, "runs/main_cpu_pendulum", "run folder written by train.py"),
    "checkpoint": (str, "latest", "checkpoint folder name under checkpoints/, or latest"),
    "episodes": (int, 10, "evaluation episodes per condition"),
    "probe_episodes": (int, 8, "random-action episodes for the probe R² (3/4 fit, 1/4 scored)"),
    "severities": (str, "1,3,5", "severities to run for every perturbation, comma-separated"),
    "seed": (int, 12345, "seed of the evaluation episodes"),
    "piece": (bool, False, "save as a piece of the DMC robustness benchmark (a bench_dmc run; severity 3 by default)"),
    "table": (bool, False, "rebuild the DMC robustness table from its saved pieces, evaluating nothing"),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "bench_robustness.py")
    if args["table"]:
        dmc_robustness.save_dmc_table()
        return 0
    try:
        given = any(a.startswith("severities=") for a in (sys.argv[1:] if argv is None else argv))
        severities = args["severities"] if given or not args["piece"] else "3"
        levels = [level.strip() for level in severities.split(",") if level.strip()]
        perturbations = parse_perturbations(",".join(f"{name}:{level}" for name in PERTURBATIONS for level in levels))
        if not perturbations or args["episodes"] < 1 or args["probe_episodes"] < 2:
            raise ConfigError("pass at least one severity, episodes >= 1 and probe_episodes >= 2.")
        loaded = load_run(args["run_dir"], args["checkpoint"], seed=args["seed"])
        piece = dmc_robustness.piece_key(args["run_dir"], loaded.cfg.env) if args["piece"] else None
        if loaded.cfg.env.startswith("dm_control/"):  # the physics-level colour shifts too
            perturbations += [(mode, 0) for mode in COLOR_MODES]
        report = robustness(loaded.agent, perturbations, args["episodes"], args["seed"], args["probe_episodes"])
    except (ConfigError, EnvError, CheckpointError, ValueError) as e:
        print(f"bench_robustness.py: error: {e}", file=sys.stderr)
        return 2
    print(format_table(report))
    raw = {"env": loaded.cfg.env, "run_dir": args["run_dir"], "checkpoint": loaded.checkpoint.name,
           "episodes": args["episodes"], "seed": args["seed"], **report}
    if piece is not None:
        dmc_robustness.save_piece(piece, raw)
        return 0
    results.save("bench_robustness", robustness_table(report, args["episodes"]), raw, results.command_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
