"""Linear-probe R² before and after self-supervised pretraining, per objective and seed.

    python scripts/bench_probe.py [env=Pendulum-v1] [preset=cpu] [steps=1500] [seeds=0,1,2]
                                  [objectives=masked,contrastive,both] [precision=bf16]

Each (objective, seed) pair runs `scripts/pretrain.py` into `runs/bench_probe/...` and its result
is saved as its own JSON under docs/results/probe/ as soon as it finishes, so the benchmark can be
stopped and resumed: pairs with a saved result are skipped. The README table is rebuilt from
whatever results exist (mean ± 95% CI over seeds).
"""

from __future__ import annotations

import sys

from agents.analysis import results
from agents.analysis.bench import probe
from worldmodel.cli import parse_keys

KEYS = {
    "env": (str, "Pendulum-v1", "environment id"),
    "preset": (str, "cpu", "config preset of the pretraining runs"),
    "steps": (int, 1500, "pretraining updates per run"),
    "seeds": (str, "0,1,2", "seeds, comma-separated"),
    "objectives": (str, "masked,contrastive,both", "pretraining objectives, comma-separated"),
    "precision": (str, "bf16", "precision of the pretraining runs (fp32, bf16, fp16)"),
}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_probe.py")
    env, preset = args["env"], args["preset"]
    steps, precision = args["steps"], args["precision"]
    seeds = results.int_list("seeds", args["seeds"])
    for seed in seeds:
        for objective in args["objectives"].split(","):
            if probe.piece_path(env, preset, objective, steps, seed).exists():
                continue
            result = probe.run_piece(env, preset, objective, seed, steps, precision)
            print(f"{objective} seed {seed}: probe R² {result['r2_untrained']:.3f} -> {result['r2_trained']:.3f}",
                  flush=True)
            probe.save_table()


if __name__ == "__main__":
    main(sys.argv[1:])
