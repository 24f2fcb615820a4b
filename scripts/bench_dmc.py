"""DeepMind Control from pixels at 100k frames: the PlaNet benchmark's six tasks, beside the published figures.

    python scripts/bench_dmc.py [tasks=cartpole-swingup,reacher-easy,...] [seeds=0,1,2] [variants=dmc]
                                [steps=100000] [final_episodes=10] [threads=1] [runs=runs/bench_dmc]
    python scripts/bench_dmc.py only=cheetah-run:dmc+augment=shift:0       # one piece

Each (task, variant, seed) is one `scripts/train.py env=dm_control/<task>-v0 preset=<variant>
seed=<seed>` run into runs/bench_dmc/...; a run stopped midway resumes from its checkpoint the
next time. The `dmc` preset is the PlaNet protocol: 100k frames (environment steps, action repeats
included), each task at its own action repeat (cartpole-swingup 8, reacher-easy 4, cheetah-run 4,
finger-spin 2, ball_in_cup-catch 4, walker-walk 2), a 10-episode evaluation every 10k frames. A
variant is a preset with `+key=value` overrides (`dmc+augment=shift`), its own rows. Each finished
run's last checkpoint is also evaluated over `final_episodes` episodes by `scripts/evaluate.py` (the
same start states for every piece), and the run is saved as its own JSON under docs/results/dmc/
(curve of frames, seconds and eval return; final-agent returns; frames/s and updates/s; probe/r2
curve when logged; the resolved config and the machine), so the benchmark fills in piece by piece.

The table (rebuilt from whatever pieces exist) gives per task and variant: seeds done, the eval
return at the last evaluation (mean ± 95% CI, every seed listed), the final agents' mean, minutes
per run, frames/s and updates/s, and beside them the published figures (DrQ, CURL, MLR, PlayVirtual,
DreamerV3 on the PlaNet benchmark at 100k frames; DrQ-v2 and MR.Q at action repeat 2, 100k frames;
TD-MPC2 at 200k frames, its "100k steps"); a task with no piece yet shows the command that fills it,
and a mean-over-the-six row appears once all six have results. Plot: docs/results/dmc.png.
`threads=1` (default) runs each piece on one torch thread, the speed target being two runs side by
side on a 2-core machine.
"""

from __future__ import annotations

import sys

from agents.analysis import results
from agents.analysis.bench import dmc
from worldmodel.cli import parse_keys

KEYS = {
    "tasks": (str, ",".join(dmc.short(t) for t in dmc.TASKS), "DeepMind Control tasks (<domain>-<task>), comma-separated"),
    "seeds": (str, "0,1,2", "seeds, comma-separated"),
    "variants": (str, "dmc", "presets, comma-separated; preset+key=value+... adds config overrides (e.g. dmc+augment=shift)"),
    "only": (str, "", "run just this piece, as <task>:<variant>:<seed> (instead of tasks/variants/seeds)"),
    "steps": (int, dmc.FRAMES, "frames (environment steps, action repeats included) per run"),
    "final_episodes": (int, 10, "episodes of each finished run's final evaluation (its last checkpoint); 0: none"),
    "threads": (int, 1, "torch threads of each piece's processes"),
    "runs": (str, "runs/bench_dmc", "folder for the pieces' run folders"),
}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_dmc.py")
    if args["steps"] < 1:
        raise results.bad_argument(f"steps={args['steps']} must be at least 1.")
    if args["final_episodes"] < 0:
        raise results.bad_argument("final_episodes must be 0 (none) or more.")
    if args["threads"] < 1:
        raise results.bad_argument(f"threads={args['threads']} must be at least 1.")
    jobs = results.piece_jobs(args["only"], args["seeds"], args["tasks"].split(","), args["variants"].split(","),
                              ("task", "variant"))
    try:
        jobs = [(dmc.task_id(task), variant, seed) for task, variant, seed in jobs]
        for variant in dict.fromkeys(variant for _, variant, _ in jobs):
            dmc.check_variant(variant)
    except ValueError as e:
        raise results.bad_argument(str(e)) from None
    runs = (results.ROOT / args["runs"]).resolve()
    for task, variant, seed in jobs:
        if dmc.fill_piece(task, variant, seed, args["steps"], args["final_episodes"], args["threads"], runs):
            dmc.save_table()
    dmc.save_table()  # also when every piece already existed (e.g. pieces copied in from another checkout)


if __name__ == "__main__":
    main(sys.argv[1:])
