"""Pixel environment throughput: steps/s for a few ids, single and vectorised.

    python scripts/bench_envs.py [seconds=3] [ids=Pendulum-v1,CartPole-v1,...] [workers=1,2,4]

Each figure is agent steps/s (action_repeat=1, 64x64 frames, random actions, autoreset
included), counted over `seconds` after a warm-up. Writes docs/results/bench_envs.json and
refreshes the README table. Run it alone: other jobs on the same cores distort it.
"""

from __future__ import annotations

import sys

from agents.analysis import results
from agents.analysis.bench.envs import env_rates, env_table
from worldmodel.cli import parse_keys

KEYS = {
    "seconds": (float, 3.0, "seconds each figure is counted over, after a warm-up"),
    "ids": (str, "Pendulum-v1,CartPole-v1,Acrobot-v1,MountainCarContinuous-v0", "env ids, comma-separated"),
    "workers": (str, "1,2,4", "vector env sizes, comma-separated (1: the single env only)"),
}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_envs.py")
    workers = results.int_list("workers", args["workers"])
    raw = {}
    for env_id in args["ids"].split(","):
        raw[env_id] = env_rates(env_id, workers, args["seconds"])
        print(env_id, {k: round(v) for k, v in raw[env_id].items()}, flush=True)
    results.save("bench_envs", env_table(raw, workers), raw, results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
