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

import sys

from agents.analysis import results
from agents.analysis.bench import transfer
from worldmodel.cli import parse_keys

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


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_transfer.py")
    jobs = results.piece_jobs(args["only"], args["seeds"], args["pairs"].split(","), args["modes"].split(","),
                              ("source>target", "mode"))
    for pair, mode, seed in jobs:
        if transfer.fill_piece(pair, mode, seed, args["preset"], args["steps"], args["pretrain_updates"],
                               args["source_run"]):
            transfer.save_table()
    transfer.save_table()  # the table and plot from every piece there is (also when all were already done)


if __name__ == "__main__":
    main(sys.argv[1:])
