"""DeepMind Control from pixels at 100k frames: the PlaNet benchmark's six tasks, beside the published figures.

    python scripts/bench_dmc.py [tasks=cartpole-swingup,reacher-easy,...] [seeds=0,1,2] [variants=dmc]
                                [steps=100000] [final_episodes=10] [threads=1] [runs=runs/bench_dmc]
    python scripts/bench_dmc.py only=cheetah-run:dmc+augment=none:0        # one piece
    python scripts/bench_dmc.py speed=true [tasks=...] [variants=...]      # where a run's time goes
    python scripts/bench_dmc.py table=true                                 # rebuild the tables from the pieces
    python scripts/bench_dmc.py relabel="the dmc preset makes ... since ..."  # after a preset default changed
    python scripts/bench_dmc.py only=cartpole-swingup:dmc+encoder_from=source:cartpole-balance:0  # transfer
    python scripts/bench_dmc.py only=cartpole-swingup:dmc:1 eval_also=dm_control/cartpole-balance-v0,color_hard
    python scripts/bench_dmc.py tasks=walker-walk variants=dmc+appearance=conv robustness=true  # + robustness pieces

Each (task, variant, seed) is one `scripts/train.py env=dm_control/<task>-v0 preset=<variant>
seed=<seed>` run into runs/bench_dmc/...; a run stopped midway resumes from its checkpoint the
next time. The `dmc` preset is the PlaNet protocol: 100k frames (environment steps, action repeats
included), each task at its own action repeat (cartpole-swingup 8, reacher-easy 4, cheetah-run 4,
finger-spin 2, ball_in_cup-catch 4, walker-walk 2), a 10-episode evaluation every 10k frames. A
variant is a preset with `+key=value` overrides (`dmc+augment=none`), its own rows. Each finished
run's last checkpoint is also evaluated over `final_episodes` episodes by `scripts/evaluate.py` (the
same start states for every piece; noise-free, and again with training's exploration noise,
`acting=training`, which the probe table sets beside it), and the run is saved as its own JSON under docs/results/dmc/
(curve of frames, seconds and eval return; final-agent returns; frames/s and updates/s; probe/r2
curve when logged; the resolved config and the machine), so the benchmark fills in piece by piece.

The table (rebuilt from whatever pieces exist) gives per task and variant: seeds done, the eval
return at the last evaluation (mean ± 95% CI, every seed listed), the final agents' mean, minutes
per run, frames/s and updates/s, and beside them the published figures (DrQ, CURL, MLR, PlayVirtual,
DreamerV3 on the PlaNet benchmark at 100k frames; DrQ-v2 and MR.Q at action repeat 2, 100k frames;
TD-MPC2 at 200k frames, its "100k steps"); each task lists `dmc` and the ablations (`dmc.ABLATIONS`),
a missing one with the command that fills it, other variants only where they have pieces,
and a mean-over-the-six row appears once all six have results. Plots: docs/results/dmc.png (per task,
`dmc` and the preset before its last change there, beside the published figures) and
docs/results/dmc_transfer.png (each transfer variant beside its scratch twin).
A variant with `encoder_from=` starts from a pretrained encoder and gets its own table beside its
scratch twin (the variant without the encoder keys): a run folder, a shipped `pretrained:<name>`, or
`source:<task>`, a `scripts/pretrain.py` run on another task made first (once, under `runs`, then
shared): `source_frames` random-action frames of that task at the target's action repeat,
`source_updates` updates, the variant's model keys (e.g. its objective). `speed=true` trains nothing: per task and variant it measures the medians of one environment step
(rendering included), one act and one update, and projects the minutes of a whole run from them
(docs/results/bench_dmc_speed.json and its table). `threads=1` (default) runs each piece on one torch thread, the speed target being two runs side by
side on a 2-core machine.
"""

from __future__ import annotations

import datetime
import json
import sys

from agents.analysis import results
from agents.analysis.bench import dmc
from agents.analysis.bench import robustness as dmc_robustness
from worldmodel.cli import parse_keys

KEYS = {
    "tasks": (str, ",".join(dmc.short(t) for t in dmc.TASKS), "DeepMind Control tasks (<domain>-<task>), comma-separated"),
    "seeds": (str, ",".join(map(str, dmc.SEEDS)), "seeds, comma-separated"),
    "variants": (str, "dmc", "presets, comma-separated; preset+key=value+... adds config overrides (e.g. dmc+augment=none)"),
    "only": (str, "", "run just this piece, as <task>:<variant>:<seed> (instead of tasks/variants/seeds)"),
    "steps": (int, dmc.FRAMES, "frames (environment steps, action repeats included) per run"),
    "final_episodes": (int, 10, "episodes of each finished run's final evaluation (its last checkpoint); 0: none"),
    "threads": (int, 1, "torch threads of each piece's processes"),
    "runs": (str, "runs/bench_dmc", "folder for the pieces' run folders"),
    "source_frames": (int, dmc.SOURCE_FRAMES, "random-action frames of a source run (variants with encoder_from=source:<task>)"),
    "source_updates": (int, dmc.SOURCE_UPDATES, "pretraining updates of a source run"),
    "robustness": (bool, False, "also evaluate each finished piece under the colour shifts and perturbations "
                                "(scripts/bench_robustness.py piece=true on its run folder), unless that is saved"),
    "eval_also": (str, "", "conditions every evaluation of the pieces trained now also plays (train.py's eval_also, e.g. "
                           "color_hard or dm_control/cartpole-balance-v0); saved as curves in each piece, not in its label"),
    "speed": (bool, False, "measure where a run's time goes instead (env step, act, update per task and variant) "
                           "and project the minutes per run; writes docs/results/bench_dmc_speed.json"),
    "table": (bool, False, "rebuild the tables and the plot from the saved pieces (e.g. pieces copied in from "
                           "another checkout), training nothing"),
    "relabel": (str, "", "after a preset default changed, why (one sentence): give every saved piece whose label no "
                         "longer names what it ran the label that does, then rebuild the tables"),
    "speed_case": (str, "", "internal: measure the single case <task>:<variant> and print its JSON"),
}


def measure_speed(task: str, variant: str, repeats: int = 30) -> dict:
    """Medians of one env step (rendering included), one act, one evaluation act per env (a batched plan
    for the variant's eval_envs envs, divided by them) and one update of `task` at `variant`, on a replay
    filled by random steps, in this process; and the run they project (`dmc.projection`)."""
    import torch

    from agents.episodes import make_envs
    from agents.random import RandomAgent
    from agents.training.assembly import (
        build_agent,
        build_model,
        build_replay,
        build_trainer,
        resolve_config,
    )
    from agents.training.collect import Collector
    from worldmodel.actions import ActionSpec

    from agents.training.memory import retain_freed_memory

    retain_freed_memory()  # as train.py does
    preset, overrides = results.split_preset(variant)
    cfg = resolve_config([f"env={task}", f"preset={preset}", *(f"{k}={v}" for k, v in overrides.items()),
                          "buffer_size=5000"])
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    envs = make_envs(cfg, 1, seed=0)
    spec = ActionSpec.from_space(envs.single_action_space)
    replay = build_replay(cfg, spec, 0, cpu)
    model = build_model(cfg, spec, cpu)
    trainer = build_trainer(cfg, model, cpu)
    agent = build_agent(cfg, model, trainer, cpu, seed=0)
    collector, explore = Collector(envs, spec, replay, cfg.action_repeat, seed=0), RandomAgent(spec, 0)
    agent.reset(torch.ones(1, dtype=torch.bool))
    for _ in range(cfg.sample_len * 4):  # enough frames for the replay to sample a batch
        collector.step(explore.act(collector.observation()))
    env_seconds = results.median_seconds(lambda: collector.step(explore.act(collector.observation())), repeats * 4)
    act_seconds = results.median_seconds(lambda: agent.act(collector.observation()), repeats)
    # An evaluation plans for its eval_envs envs at once: the cost per env of one batched plan.
    side_by_side = min(cfg.eval_envs, cfg.eval_episodes) if cfg.eval_envs else 1
    stacked = collector.observation().expand(side_by_side, -1, -1, -1)
    eval_act_seconds = results.median_seconds(lambda: agent.act(stacked, eval=True), repeats) / side_by_side
    update_seconds = results.median_seconds(lambda: trainer.update(replay.sample(cfg.batch_size)), repeats)
    envs.close()
    resolved = cfg.to_dict()
    return {"task": task, "variant": variant, "action_repeat": cfg.action_repeat, "env_seconds": env_seconds,
            "act_seconds": act_seconds, "eval_act_seconds": eval_act_seconds, "eval_envs": side_by_side,
            "update_seconds": update_seconds, "threads": torch.get_num_threads(),
            "projection": dmc.projection(resolved, env_seconds, act_seconds, update_seconds, eval_act_seconds),
            "config": resolved}


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_dmc.py")
    if args["speed_case"]:
        task, variant = args["speed_case"].split(":", 1)
        print(json.dumps(measure_speed(task, variant)))
        return
    if args["steps"] < 1:
        raise results.bad_argument(f"steps={args['steps']} must be at least 1.")
    if args["final_episodes"] < 0:
        raise results.bad_argument("final_episodes must be 0 (none) or more.")
    if args["threads"] < 1:
        raise results.bad_argument(f"threads={args['threads']} must be at least 1.")
    if args["relabel"]:
        try:
            renamed = dmc.relabel(args["relabel"], datetime.date.today().isoformat())
        except ValueError as e:
            raise results.bad_argument(str(e)) from None
        for before, after in renamed:
            print(f"{before} -> {after}")
        print(f"{len(renamed)} pieces relabelled")
        dmc.save_table()
        dmc_robustness.save_dmc_table()
        return
    if args["table"]:
        dmc.save_table()
        return
    jobs = results.piece_jobs(args["only"], args["seeds"], args["tasks"].split(","), args["variants"].split(","),
                              ("task", "variant"))
    try:
        jobs = [(dmc.task_id(task), variant, seed) for task, variant, seed in jobs]
        for variant in dict.fromkeys(variant for _, variant, _ in jobs):
            dmc.check_variant(variant)
    except ValueError as e:
        raise results.bad_argument(str(e)) from None
    if args["speed"]:
        cases = []
        for task, variant in dict.fromkeys((task, variant) for task, variant, _ in jobs):
            with dmc.thread_limit(args["threads"]):
                cases.append(results.run_json([sys.executable, __file__, f"speed_case={task}:{variant}"],
                                              f"{dmc.short(task)}:{variant}"))
            p = cases[-1]["projection"]
            print(f"{dmc.short(task)} {variant}: {p['minutes']:.0f} minutes per run projected "
                  f"({100 * p['update_share']:.0f}% updates)", flush=True)
        dmc.save_speed(cases, results.command_line())
        return
    runs = (results.ROOT / args["runs"]).resolve()
    for task, variant, seed in jobs:
        if dmc.fill_piece(task, variant, seed, args["steps"], args["final_episodes"], args["threads"], runs,
                          (args["source_frames"], args["source_updates"]), args["eval_also"]):
            dmc.save_table()
        if args["robustness"]:
            dmc.fill_robustness(task, variant, seed, args["steps"], args["threads"], runs)
    dmc.save_table()  # also when every piece already existed (e.g. pieces copied in from another checkout)


if __name__ == "__main__":
    main(sys.argv[1:])
