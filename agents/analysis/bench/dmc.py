"""DeepMind Control at 100k frames (`scripts/bench_dmc.py`): the PlaNet benchmark's six tasks from
pixels, per task, variant and seed, piece by piece, beside the published figures.

    fill_piece("dm_control/cartpole-swingup-v0", "dmc", seed=0, steps=100_000, final_episodes=10,
               threads=1, runs=Path("runs/bench_dmc"))
    save_table()                      # the tables, docs/results/dmc.png and dmc_transfer.png, from every piece

A piece is one `scripts/train.py env=<task> preset=<variant> seed=<seed>` run (a stopped one resumes),
saved as its own JSON under `PIECES` once it reaches its frames, with a final evaluation of its last
checkpoint by `scripts/evaluate.py`. A variant is a preset with any `+key=value` overrides
(`dmc+augment=none`). Frames are environment steps with action repeats included, the PlaNet
benchmark's unit; `train.py` gives each of its tasks its own repeat (`envs.PLANET_ACTION_REPEAT`).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from agents.analysis import results
from agents.analysis.bench import robustness
from agents.analysis.bench.sample_efficiency import final_eval, finished
from agents.analysis.metrics import read_metrics
from agents.analysis.plots import pyplot, save_figure
from envs.suites import PLANET_ACTION_REPEAT
from worldmodel.config import PRESET_TASKS, PRESETS, Config, ConfigError
from worldmodel.model import ENCODER_KEYS

PIECES = results.RESULTS / "dmc"
"""Where each finished piece is saved."""
PLOT = results.RESULTS / "dmc.png"
TRANSFER_PLOT = results.RESULTS / "dmc_transfer.png"
TASKS = tuple(PLANET_ACTION_REPEAT)
"""The PlaNet benchmark's six tasks, in table order."""
FRAMES = 100_000
"""The budget the published figures below are compared at."""
SEEDS = (0, 1, 2)
"""The seeds every (task, variant) of the benchmark is run at (`scripts/bench_dmc.py seeds=`)."""
BENCH_KEYS = ("env", "seed", "steps", "run_dir", "resume", "preset", "exp")
"""Config keys the benchmark sets itself, which a variant's overrides may not."""
THREAD_VARIABLES = results.THREAD_VARIABLES
"""What sets the torch (intra-op) threads of a piece's processes."""
SOURCE = "source:"
"""`encoder_from=source:<task>` in a variant (e.g. `dmc+encoder_from=source:cartpole-balance`): start from
the encoder of a `scripts/pretrain.py` run on <task>, made once under the pieces' runs folder and
shared by every piece that names it (see `source_run`)."""
TRANSFER_PAIRS = (("cartpole-balance", "cartpole-swingup", "dmc"), ("walker-stand", "walker-walk", "dmc"),
                  ("walker-walk", "walker-run", "dmc"), ("reacher-easy", "reacher-hard", "dmc+action_repeat=4"),
                  ("finger-spin", "finger-turn_easy", "dmc"))
"""The within-domain pairs the transfer table lists, (source, target, scratch variant), each with a frozen and a
fine-tuned transfer (`transfer_variants`) and the command that fills a missing one. A target outside the six
runs at its suite's default repeat (2) unless its variant names its domain's PlaNet repeat (reacher: 4)."""
MODES = ("frozen", "finetune")
TRANSFER_LEVERS = (
    ("cartpole-swingup", "dmc+encoder_from=source:cartpole-balance+encoder_mode=finetune+encoder_frozen_layers=2"),
    ("cartpole-swingup", "dmc+encoder_from=source:cartpole-balance+encoder_mode=init"),
    ("cartpole-swingup", "dmc+augment=none+encoder_from=pretrained:cartpole-balance+encoder_mode=finetune"),
    ("cartpole-swingup", "dmc+objective=masked+encoder_from=source:cartpole-balance+encoder_mode=finetune"),
    ("cartpole-swingup", "dmc+objective=both+encoder_from=source:cartpole-balance+encoder_mode=finetune"),
)
"""The levers the literature names for where reuse does not pay, on the first within-domain pair, each to
read against the fine-tuned transfer's row (`encoder_mode=finetune`: every conv layer trained, the encoder
at 0.1× the learning rate, random shift on; the table's own speed-up and ΔAUC compare each with its
scratch twin, which for the augmentation and objective levers is `dmc+augment=none` or
`dmc+objective=...`): partial fine-tuning (the first two conv layers frozen), the
encoder's learning rate (`init`: at the full rate), augmentation during fine-tuning (none; from the
shipped `pretrained:cartpole-balance`, the same encoder `source:cartpole-balance` makes, so that only
the fine-tuning loses its shift: a `source:` run would pretrain without it too) and the pretraining
objective (a `source:` run pretrains with the variant's: masked, both). The transfer table lists each
without pieces, with the command that fills it."""
MULTI_DOMAIN = "dmc+encoder_from=pretrained:dmc+encoder_mode=finetune"
MULTI_DOMAIN_TARGETS = ("cartpole-swingup", "reacher-easy", "cheetah-run", "finger-spin", "ball_in_cup-catch",
                        "walker-walk", "hopper-stand")
"""The shipped multi-domain encoder (`pretrained:dmc`, random-action frames of the six PlaNet domains),
fine-tuned on each PlaNet task and on hopper-stand, a domain it never saw: the transfer table lists each
target without pieces, with its command."""
SOURCE_FRAMES, SOURCE_UPDATES = 20_000, 4_000
"""A source run's random-action frames and pretraining updates (the recipe of the shipped encoders, per
domain: `pretrained:cartpole-balance` is exactly the encoder `source:cartpole-balance` makes)."""
ABLATIONS = ("dmc+augment=none", "dmc+objective=masked", "dmc+objective=both")
"""Variants the table lists on every task beside `dmc`, with the command that fills a missing row: the
ablations the benchmark asks for (augmentation, `dmc` training with shift; the objective: masked alone,
both, `dmc` being contrastive alone). Any other variant (a tuning search) shows only the rows it has
pieces for."""
BOOKKEEPING_KEYS = ("probe_episodes", "probe_online", "video", "tensorboard", "log_every", "checkpoint_every",
                    "keep_checkpoints", "device", "replay_device", "compile", "eval_envs", "eval_also")
"""Config keys that change what a run records, not what it learns: a piece's label need not name them."""
PRETRAIN_ONLY_KEYS = ("updates_per_step", "seed_steps", "seed_updates", "eval_every", "eval_episodes",
                      "eval_envs", "eval_also", "checkpoint_every", "log_every")
"""Online-loop keys a variant may set that a source's pretraining run does not take."""


class Published(NamedTuple):
    """One method's published figures: its step convention, the frames they are at, return per task."""

    convention: str
    frames: int
    returns: dict[str, float]


def _by_task(*values: float | None) -> dict[str, float]:
    """Returns in `TASKS` order (cartpole, reacher, cheetah, finger, cup, walker); None: not reported."""
    return {task: value for task, value in zip(TASKS, values, strict=True) if value is not None}


# Mean return from pixels, copied from the project's notes on peers' figures (ANCHORS.md), which
# cite: the PlaNet benchmark at 100k frames (10 seeds) from the MLR repository's figs/DMC.png, the
# PlayVirtual repository's DMControl/figs/DMC.png, CURL's paper (Table 1) and DreamerV3's repository
# score files; DrQ-v2 from its repository's curves (10 seeds) and MR.Q from its ICLR 2025 paper (10
# seeds), both repeating every action twice, at 100k frames; TD-MPC2 pixels (3 seeds) at 200k frames,
# the point its plots call 100k (agent) steps, on four of the six tasks. The mean-over-the-six row is
# computed from these per-task figures (the notes' own "≈755" for DrQ does not match them: they
# average 688).
PUBLISHED: dict[str, Published] = {
    "DrQ": Published("PlaNet repeats", 100_000, _by_task(759, 601, 344, 901, 913, 612)),
    "CURL": Published("PlaNet repeats", 100_000, _by_task(582, 538, 299, 767, 769, 403)),
    "MLR": Published("PlaNet repeats", 100_000, _by_task(806, 866, 482, 907, 933, 643)),
    "PlayVirtual": Published("PlaNet repeats", 100_000, _by_task(816, None, 474, 915, None, None)),
    "DreamerV3": Published("repeat 1, its config", 100_000, _by_task(597, 376, 308, 503, 864, 605)),
    "DrQ-v2": Published("repeat 2", 100_000, _by_task(626, 250, 273, 325, 359, 170)),
    "MR.Q": Published("repeat 2", 100_000, _by_task(477, 449, 254, 744, 194, 568)),
    "TD-MPC2": Published("repeat 2; its 100k steps", 200_000, _by_task(None, 360, 286, 981, None, 464)),
}
"""Published mean return per task (full ids), per method, with the frames it is reported at."""
MARKERS = dict(zip(PUBLISHED, "os^vPXD*"))


def published_cell(method: str, task: str | None) -> str:
    """`method`'s published return on `task`, as a table cell; None: its mean over the six, where it
    reports all six; "–" where it reports none."""
    returns = PUBLISHED[method].returns
    if task is None:
        return f"{statistics.mean(returns[t] for t in TASKS):.0f}" if all(t in returns for t in TASKS) else "–"
    return f"{returns[task]:.0f}" if task in returns else "–"


def task_id(name: str) -> str:
    """`cartpole-swingup` -> `dm_control/cartpole-swingup-v0` (a full `dm_control/...` id stays);
    ValueError for anything else."""
    if name.startswith("dm_control/"):
        return name
    if "/" in name or "-" not in name.strip("-"):
        raise ValueError(f"task {name!r}: name a DeepMind Control task as <domain>-<task> (e.g. cartpole-swingup, "
                         "ball_in_cup-catch) or dm_control/<domain>-<task>-v0.")
    return f"dm_control/{name}-v0"


def short(task: str) -> str:
    """`dm_control/cartpole-swingup-v0` -> `cartpole-swingup`, the name `tasks=` takes."""
    name = task.removeprefix("dm_control/")
    return name.removesuffix("-v0")


def check_variant(variant: str) -> None:
    """ValueError unless `variant` is a preset with valid `+key=value` config overrides, none of them
    a key the benchmark sets itself (`BENCH_KEYS`)."""
    try:
        preset, overrides = results.split_preset(variant)
    except SystemExit as e:
        raise ValueError(str(e.code)) from None
    if preset not in PRESETS:
        raise ValueError(f"variant {variant!r}: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if overrides.get("encoder_from", "").startswith(SOURCE):
        task_id(overrides["encoder_from"].removeprefix(SOURCE))  # a malformed source task is a ValueError
    clash = [key for key in overrides if key in BENCH_KEYS]
    if clash:
        raise ValueError(f"variant {variant!r}: the benchmark sets {', '.join(clash)} itself; use its own keys "
                         "(steps=, seeds=, runs=) instead.")
    try:
        Config.from_preset(preset, **overrides)
    except ConfigError as e:
        raise ValueError(f"variant {variant!r}: {e}") from None


def label_mismatch(piece: dict) -> dict[str, tuple]:
    """Where a saved piece's config differs from what its variant label resolves to today
    (`train.py env=<task> preset=<preset> <overrides>` with the task's protocol): `{key: (ran, label
    gives)}`, empty when the label still names what ran. A preset default that changes after a piece
    was trained (the `dmc` preset's `augment` on 2026-12-06) shows up here until the piece is relabelled.
    The keys the benchmark sets itself (`BENCH_KEYS`) and bookkeeping keys are not compared, nor the
    encoder's shape keys of a variant that starts from a pretrained encoder (they come from it)."""
    from agents.training.assembly import resolve_config

    preset, overrides = results.split_preset(piece["variant"])
    ran = Config.from_saved(piece["config"])
    # The transfer keys are checked against the label directly: without encoder_from (a path resolved at
    # run time) the config would refuse e.g. encoder_frozen_layers.
    args = [f"env={piece['task']}", f"preset={preset}", *(f"{k}={v}" for k, v in overrides.items()
                                                         if k not in TRANSFER_KEYS)]
    labelled = resolve_config(args)
    expected = {k: getattr(labelled, k) for k in ran.to_dict()}
    expected.update({k: type(expected[k])(v) for k, v in overrides.items() if k in TRANSFER_KEYS[1:]})
    skip = {*BENCH_KEYS, *BOOKKEEPING_KEYS}
    if "encoder_from" in overrides:  # its path (source:<task> becomes a run folder) and shape keys come from the encoder
        skip |= {"encoder_from", *ENCODER_KEYS}
    return {k: (getattr(ran, k), expected[k]) for k in ran.to_dict() if k not in skip and getattr(ran, k) != expected[k]}


def _label_value(value: object) -> str:
    """A config value as a variant label writes it: `true`/`false`, `1` for 1.0, else as printed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _join(preset: str, overrides: dict[str, str]) -> str:
    return "+".join([preset, *(f"{key}={value}" for key, value in overrides.items())])


def relabelled_variant(piece: dict) -> str:
    """The label that names what `piece` ran under today's presets: its own label when that still does
    (`label_mismatch` empty) and none of its overrides is a key the preset sets for that task
    (`PRESET_TASKS`); else its label with `+key=<the value it ran>` appended for every key where they
    differ, then without each override the preset now gives by itself (`dmc+updates_per_step=1` on
    cartpole-swingup reads `dmc` once that is the preset's value there)."""
    mismatch = label_mismatch(piece)
    preset, overrides = results.split_preset(piece["variant"])
    for_task = PRESET_TASKS.get(preset, {}).get(piece["task"], {})
    if not mismatch and not any(key in for_task for key in overrides):
        return piece["variant"]
    overrides.update({key: _label_value(ran) for key, (ran, _) in mismatch.items()})
    # Without a mismatch only the overrides the task's preset now gives can go; with one, any override
    # the preset gives by itself.
    for key in [k for k in overrides if k != "encoder_from" and (mismatch or k in for_task)]:
        fewer = {k: v for k, v in overrides.items() if k != key}
        if not label_mismatch({**piece, "variant": _join(preset, fewer)}):
            overrides = fewer
    return _join(preset, overrides)


def relabel(why: str, on: str) -> list[tuple[str, str]]:
    """After a preset default changed: give every saved piece whose label no longer names what it ran the
    label that does (`relabelled_variant`). Its command gains `key=value` for each key the new label had
    to name, its `relabelled` list records `{"from", "on", "why"}`, and its file is renamed; the DMC
    robustness piece of the same run (task, old label, seed) follows it. Returns (old name, new name) of
    each piece file renamed. Nothing is written if two pieces would land on one name, or on a piece
    that stays."""
    renames: list[tuple[Path, Path, dict]] = []
    moved: dict[tuple[str, str, int], str] = {}  # (short task, old label, seed) -> new label
    for path in sorted(PIECES.glob("*.json")):
        piece = json.loads(path.read_text())
        variant = relabelled_variant(piece)
        if variant == piece["variant"]:
            continue
        _, named = results.split_preset(variant)
        command = piece.get("command", "")
        for key, value in named.items():
            if f" {key}=" not in f" {command}":
                command += f" {key}={value}"
        entry = {"from": piece["variant"], "on": on, "why": why}
        new = {**piece, "variant": variant, "command": command, "relabelled": [*piece.get("relabelled", []), entry]}
        renames.append((path, piece_path(piece["task"], variant, piece["steps"], piece["seed"]), new))
        if piece["steps"] == FRAMES:  # robustness pieces carry the run folder's spelling of the label
            moved[short(piece["task"]), piece["variant"].replace(":", "-"), piece["seed"]] = variant
    for path in sorted(robustness.PIECES.glob("*.json")):
        piece = json.loads(path.read_text())
        variant = moved.get((piece["task"], piece["variant"], piece["seed"]))
        if variant is not None:
            variant = variant.replace(":", "-")  # as a robustness piece names it (from its run folder's name)
            entry = {"from": piece["variant"], "on": on, "why": why}
            renames.append((path, robustness.piece_path(piece["task"], variant, piece["seed"]),
                            {**piece, "variant": variant, "relabelled": [*piece.get("relabelled", []), entry]}))
    leaving = {old for old, _, _ in renames}
    targets = [new for _, new, _ in renames]
    clashes = sorted({str(t) for t in targets if targets.count(t) > 1 or (t.exists() and t not in leaving)})
    if clashes:
        raise ValueError("relabelling would put two pieces under one name, nothing renamed: " + ", ".join(clashes))
    for old, _, _ in renames:
        old.unlink()
    for _, new, piece in renames:
        results.write_piece(new, piece)
    return [(old.name, new.name) for old, new, _ in renames]


def piece_path(task: str, variant: str, steps: int, seed: int) -> Path:
    """Where one piece's JSON lives."""
    return PIECES / f"{run_name(task, variant, steps, seed)}.json"


def run_name(task: str, variant: str, steps: int, seed: int) -> str:
    """A piece's file and run-folder name; a colon of the variant (`encoder_from=pretrained:dmc`) becomes
    `-`, so the names stay valid on every file system."""
    return f"{short(task)}__{variant.replace(':', '-')}__{steps}__{seed}"


@contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run the scripts started inside with `threads` torch threads each (the bench's speed target is
    one thread per run, two runs side by side); the environment is restored after."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_speed(records: list[dict]) -> dict:
    """Frames/s and updates/s of a run from its metrics: medians over its log intervals (`log_every`
    frames each), so the few intervals that also hold an evaluation or a checkpoint do not count
    (minutes per run count everything); updates/s only over intervals after learning started."""
    logs = [r for r in records if "train/steps_per_second" in r]
    rates = [(b["train/updates"] - a["train/updates"]) / (b["time"] - a["time"])
             for a, b in itertools.pairwise(logs) if a["train/updates"] > 0 and b["time"] > a["time"]]
    return {"frames_per_second": statistics.median(r["train/steps_per_second"] for r in logs) if logs else None,
            "updates_per_second": statistics.median(rates) if rates else None,
            "updates": logs[-1]["train/updates"] if logs else 0}


def per_dim(record: dict, name: str) -> list[float]:
    """The values of `<name>_dim0`, `<name>_dim1`, ... in a metrics record, in dimension order."""
    dims = [int(k[len(name) + 4:]) for k in record if k.startswith(f"{name}_dim")]
    return [record[f"{name}_dim{i}"] for i in sorted(dims)]


def piece_from(run_dir: Path, task: str, variant: str, seed: int, steps: int, threads: int) -> dict:
    """The result of a finished training run folder: its evaluation curve `[frames, seconds, return]`,
    speed (`run_speed`), `probe/r2` curve `[frames, r2]` and per state dimension `[frames, [r2, ...]]`
    (when logged), the value check on each evaluation's episodes `[frames, corr, r2, bias]` (when
    logged), each `eval_also` condition's return curve `{label: [[frames, return], ...]}` (when logged),
    resolved config and machine."""
    curve = results.eval_curve(run_dir, steps)
    records = read_metrics(Path(run_dir) / "metrics.jsonl")
    cfg = json.loads((Path(run_dir) / "config.json").read_text())
    piece = {"task": task, "variant": variant, "seed": seed, "steps": steps, "curve": curve,
             "final_return": curve[-1][2], "seconds": curve[-1][1], **run_speed(records),
             "action_repeat": cfg["action_repeat"], "eval_episodes": cfg["eval_episodes"], "threads": threads,
             "config": cfg, "machine": {**results.machine(), "threads": threads}, "run_dir": str(run_dir)}
    also = sorted({k[len("eval/"):-len("/return")] for r in records for k in r
                   if k.startswith("eval/") and k.endswith("/return") and k != "eval/return"})
    if also:  # train.py's eval_also: each condition's return at each evaluation, paired with the clean one
        piece["eval_also_curves"] = {label: [(r["step"], r[f"eval/{label}/return"]) for r in records
                                             if f"eval/{label}/return" in r] for label in also}
    probed = [r for r in records if "probe/r2" in r]
    if probed:
        piece["probe_curve"] = [(r["step"], r["probe/r2"]) for r in probed]
        # per state dimension (e.g. cartpole: cart x, cos and sin of the pole angle, both velocities)
        piece["probe_dims_curve"] = [(r["step"], per_dim(r, "probe/r2")) for r in probed]
        policy = [r for r in probed if "probe/r2_policy" in r]
        if policy:  # the same probe on each evaluation's own episodes
            piece["probe_policy_curve"] = [(r["step"], r["probe/r2_policy"]) for r in policy]
            piece["probe_policy_dims_curve"] = [(r["step"], per_dim(r, "probe/r2_policy")) for r in policy]
        valued = [r for r in records if "value/corr_policy" in r]
        if valued:  # the value against the return that followed, on each evaluation's episodes
            piece["value_policy_curve"] = [(r["step"], r["value/corr_policy"], r["value/r2_policy"],
                                            r["value/bias_policy"]) for r in valued]
        rewarded = [r for r in records if "reward/corr_policy" in r]
        if rewarded:  # the reward head along the actions taken, on each evaluation's episodes
            piece["reward_policy_curve"] = [(r["step"], r["reward/corr_policy"], r["reward/r2_policy"],
                                             r["reward/bias_policy"], r["reward/bias_top_policy"]) for r in rewarded]
        # pieces saved before 2026-12-03 lack this key: their probe scored one 3/4 : 1/4 split
        piece["probe_method"] = f"{cfg.get('probe_episodes', 8)} random-action episodes, 4-fold cross-validated"
    return piece


def source_run(task: str, variant: str, runs: Path, recipe: tuple[int, int] = (SOURCE_FRAMES, SOURCE_UPDATES)
               ) -> tuple[Path, list[str]]:
    """The pretraining run a variant's `encoder_from=source:<source task>` names, for pieces on `task`:
    its folder under `runs` and the pretrain.py arguments that make it. It pretrains on `recipe[0]`
    random-action frames of the source task at `task`'s own action repeat (so the stacked frames move
    as they will on the target), for `recipe[1]` updates, seed 0, with the variant's preset and
    model keys (its objective, say): the encoder the variant's pieces then start from. `task` may be
    short (`cartpole-swingup`) or a full id."""
    task = task_id(task)  # a short name would miss PLANET_ACTION_REPEAT and pretrain at the preset's repeat
    preset, overrides = results.split_preset(variant)
    source = task_id(overrides["encoder_from"].removeprefix(SOURCE))
    keys = {k: v for k, v in sorted(overrides.items()) if not k.startswith("encoder_") and k not in PRETRAIN_ONLY_KEYS}
    repeat = PLANET_ACTION_REPEAT.get(task, keys.get("action_repeat"))
    if repeat is not None:
        keys["action_repeat"] = repeat
    label = "+".join([preset, *(f"{k}={v}" for k, v in keys.items())])
    frames, updates = recipe
    run_dir = runs / f"source__{short(source)}__{label}__{frames}x{updates}"
    args = [f"env={source}", f"preset={preset}", *(f"{k}={v}" for k, v in keys.items()),
            f"collect_steps={frames}", f"pretrain_updates={updates}", f"pretrain_probe_every={min(1000, updates)}",
            f"pretrain_checkpoint_every={min(1000, updates)}", "seed=0", f"run_dir={run_dir}"]
    return run_dir, args


def pretrain_source(task: str, variant: str, runs: Path, threads: int, recipe: tuple[int, int]) -> Path:
    """`source_run`'s folder, pretrained (or resumed) first unless it holds its encoder already."""
    run_dir, args = source_run(task, variant, runs, recipe)
    if (run_dir / "encoder.pt").is_file():
        return run_dir
    with thread_limit(threads):
        if results.resumable(run_dir):
            results.run_script("pretrain", f"run_dir={run_dir}", "resume=true")
        else:
            results.run_script("pretrain", *args)
    return run_dir


def run(task: str, variant: str, seed: int, steps: int, threads: int, runs: Path,
        recipe: tuple[int, int] = (SOURCE_FRAMES, SOURCE_UPDATES), eval_also: str = "") -> dict:
    """Train (or resume, or just read when it already reached `steps`) one piece in a folder under `runs`
    (first its source encoder's pretraining run, when the variant names one: `SOURCE`). `eval_also`:
    train.py's key of that name (conditions each evaluation also plays), not part of the label."""
    preset, overrides = results.split_preset(variant)
    source = None
    if overrides.get("encoder_from", "").startswith(SOURCE):
        source = pretrain_source(task, variant, runs, threads, recipe)
        overrides = {**overrides, "encoder_from": str(source)}
    run_dir = runs / run_name(task, variant, steps, seed)
    args = [f"env={task}", f"preset={preset}", f"seed={seed}", f"steps={steps}", f"run_dir={run_dir}",
            "exp=bench_dmc", *(f"{k}={v}" for k, v in overrides.items()), *([f"eval_also={eval_also}"] if eval_also else [])]
    commit, resumed = results.code_commit(), results.resumable(run_dir)  # the code that trains it, from here on
    with thread_limit(threads):
        if resumed:
            if not finished(run_dir, steps):
                results.run_script("train", f"run_dir={run_dir}", "resume=true", f"steps={steps}",
                                   *([f"eval_also={eval_also}"] if eval_also else []))
        else:
            results.run_script("train", *args)
    piece = piece_from(run_dir, task, variant, seed, steps, threads)
    if commit:  # not the code at the end of a run of hours; a resumed run's earlier part may be older code
        piece["machine"]["commit"] = commit + (" (resumed)" if resumed else "")
    # What trained it, with the thread limit it ran under (a resume continues the same command).
    piece["command"] = " ".join([*(f"{name}={threads}" for name in THREAD_VARIABLES), "python scripts/train.py", *args])
    if source is not None:  # and what pretrained the encoder it started from
        piece["source_command"] = " ".join(["python scripts/pretrain.py", *source_run(task, variant, runs, recipe)[1]])
        piece["source_probe"] = [r for r in read_metrics(source / "metrics.jsonl") if "probe/r2" in r][-1:]
    return piece


def fill_piece(task: str, variant: str, seed: int, steps: int, final_episodes: int, threads: int,
               runs: Path, recipe: tuple[int, int] = (SOURCE_FRAMES, SOURCE_UPDATES), eval_also: str = "") -> bool:
    """Make sure the piece exists: train it and evaluate its last checkpoint over `final_episodes`
    (0: not), noise-free (`final_eval`) and with training's exploration noise on the same episodes
    (`final_eval_training`), unless it is saved; a saved piece without them gets them while its run
    folder still holds the finished run. Whether the piece changed."""
    path = piece_path(task, variant, steps, seed)
    if path.exists():
        piece = json.loads(path.read_text())
        if not final_episodes or ("final_eval" in piece and "final_eval_training" in piece):
            return False
        if not finished(Path(piece["run_dir"]), steps):
            if "final_eval" not in piece:
                print(f"{path.name}: no final evaluation, and its run folder {piece['run_dir']} no longer holds the "
                      "finished run; delete the piece to train it again.")
            return False
        _final_evals(piece, final_episodes, threads)
        results.write_piece(path, piece)
        return True
    piece = run(task, variant, seed, steps, threads, runs, recipe, eval_also)
    if final_episodes:
        _final_evals(piece, final_episodes, threads)
    results.write_piece(path, piece)
    print(f"{short(task)} {variant} seed {seed}: eval return {piece['final_return']:.1f} at {steps:,} frames",
          flush=True)
    return True


def fill_robustness(task: str, variant: str, seed: int, steps: int, threads: int, runs: Path) -> bool:
    """Make sure the piece's robustness piece exists (`scripts/bench_robustness.py piece=true` on its run
    folder: clean, the four colour modes and the image-level perturbations); evaluated only while the
    folder holds the finished run. Whether it was made now."""
    path = robustness.piece_path(short(task), variant.replace(":", "-"), seed)
    run_dir = runs / run_name(task, variant, steps, seed)
    if path.exists():
        return False
    if not finished(run_dir, steps):
        print(f"{path.name}: no robustness piece, and {run_dir} does not hold the finished run; train the piece "
              "again (delete its DMC piece) to evaluate it.")
        return False
    with thread_limit(threads):
        results.run_script("bench_robustness", f"run_dir={run_dir}", "piece=true")
    return True


def _final_evals(piece: dict, episodes: int, threads: int) -> None:
    """The piece's final agent, noise-free and with training's noise (whichever it lacks)."""
    with thread_limit(threads):
        for key, acting in (("final_eval", "eval"), ("final_eval_training", "training")):
            if key not in piece:
                piece[key] = final_eval(Path(piece["run_dir"]), episodes, acting)


def load_groups() -> dict[tuple, list[dict]]:
    """The saved pieces by (task, variant, frames), each group's pieces in seed order."""
    groups = results.load_pieces(PIECES, lambda p: (p["task"], p["variant"], p["steps"]))
    return {key: sorted(pieces, key=lambda p: p["seed"]) for key, pieces in groups.items()}


def _order(key: tuple) -> tuple:
    task, variant, steps = key
    return (TASKS.index(task) if task in TASKS else len(TASKS), task, variant != "dmc", variant, steps)


def fill_command(task: str, variant: str) -> str:
    """The command that trains the missing pieces of `task` at `variant`."""
    return f"`python scripts/bench_dmc.py tasks={short(task)}" + ("" if variant == "dmc" else f" variants={variant}") + "`"


def _mean_cell(values: list[float | None], digits: int = 0) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.mean(known):.{digits}f}" if known else "–"


def table(groups: dict[tuple, list[dict]]) -> dict:
    """The table: one row per (task, variant, frames) with pieces, in PlaNet task order; a row with the
    command that fills it for each of the six tasks with no piece yet of `dmc` or of an `ABLATIONS`
    variant; a mean-over-the-six row per variant and frames all six have; the published figures
    beside each. Transfer variants (`encoder_from=`) have their own table (`transfer_table`)."""
    published = [f"{name} @{p.frames // 1000}k frames ({p.convention})" for name, p in PUBLISHED.items()]
    counts = sorted({p["final_eval"]["episodes"] for ps in groups.values() for p in ps if "final_eval" in p})
    if len(counts) == 1:
        episodes = f", {counts[0]} episode" + ("s" if counts[0] != 1 else "")
    else:
        episodes = " (episodes: see pieces)" if counts else ""
    final_column = f"final agent{episodes} (mean ± 95% CI)"
    columns = ["task", "action repeat", "variant", "frames", "seeds",
               "eval return at those frames (mean ± 95% CI) [seed: return]", final_column, "minutes per run",
               "frames/s", "updates/s", *published]

    def figures(task: str | None) -> list[str]:
        return [published_cell(name, task) for name in PUBLISHED]

    rows = []
    missing = [(task, variant, FRAMES) for task in TASKS for variant in ("dmc", *ABLATIONS)
               if not any(key[0] == task and key[1] == variant for key in groups)]
    for key in sorted([*groups, *missing], key=_order):
        task, variant, steps = key
        if key not in groups:
            rows.append([short(task), PLANET_ACTION_REPEAT[task], variant, f"{steps:,}",
                         f"none yet: {fill_command(task, variant)}", "–", "–", "–", "–", "–", *figures(task)])
            continue
        pieces = groups[key]
        last = [p["final_return"] for p in pieces]
        each = ", ".join(f"{p['seed']}: {p['final_return']:.0f}" for p in pieces)
        scored = [p["final_eval"]["return_mean"] for p in pieces if "final_eval" in p]
        final_cell = results.mean_ci(scored) + (f" ({len(scored)} of {len(pieces)} seeds)"
                                                 if 0 < len(scored) < len(pieces) else "")
        repeats = ", ".join(str(r) for r in sorted({p["action_repeat"] for p in pieces}))
        rows.append([short(task), repeats, variant, f"{steps:,}", len(pieces), f"{results.mean_ci(last)} [{each}]",
                     final_cell, f"{statistics.mean(p['seconds'] for p in pieces) / 60:.0f}",
                     _mean_cell([p["frames_per_second"] for p in pieces]),
                     _mean_cell([p["updates_per_second"] for p in pieces], 2), *figures(task)])
    for variant, steps in sorted({key[1:] for key in groups}, key=lambda k: (k[0] != "dmc", *k)):
        sets = [groups.get((task, variant, steps)) for task in TASKS]
        if not all(sets):
            continue
        finals = [[p["final_eval"]["return_mean"] for p in ps if "final_eval" in p] for ps in sets]
        fewest, most = min(len(ps) for ps in sets), max(len(ps) for ps in sets)
        rows.append(["mean of the six", "", variant, f"{steps:,}", str(most) if fewest == most else f"{fewest}–{most}",
                     f"{statistics.mean(statistics.mean(p['final_return'] for p in ps) for ps in sets):.0f}",
                     f"{statistics.mean(statistics.mean(f) for f in finals):.0f}" if all(finals) else "–",
                     f"{statistics.mean(statistics.mean(p['seconds'] for p in ps) for ps in sets) / 60:.0f}",
                     _mean_cell([p["frames_per_second"] for ps in sets for p in ps]),
                     _mean_cell([p["updates_per_second"] for ps in sets for p in ps], 2), *figures(None)])
    return {"columns": columns, "rows": rows}


SUMMARY_PEERS = ("DrQ", "CURL", "DreamerV3")
"""The peers the README's short table sets beside `dmc`: the strongest model-free figure at the PlaNet
repeats, the contrastive one, the model-based one (every method stays in the full table)."""
PREVIOUS_DEFAULT = ("dmc+updates_per_step=0.5", "dmc+enc_act=silu")
"""The `dmc` preset on each task as it stood before its last change there, as today's labels name it: on
cartpole-swingup and reacher-easy 0.5 updates per agent step (one since the tenth and thirteenth
sessions), on the other four the conv encoder's SiLU (ReLU since the ninth); per task the first of
these labels with pieces. The README's short table sets its per-task means beside the default's, so a
change of default never hides what came before."""


def summary_table(groups: dict[tuple, list[dict]], variant: str = "dmc",
                  previous: tuple[str, ...] = PREVIOUS_DEFAULT) -> dict:
    """The README's short table: per task of the six, the `variant` (the default preset) at 100k frames,
    every seed's eval return, their mean ± 95% CI, the final agents' mean and the minutes per run; beside
    them the `previous` default's seeds and mean (per task, the first of those labels with pieces there),
    and `SUMMARY_PEERS`. A task with no piece yet, or without one of `SEEDS`, gives the command that fills
    it (it skips the pieces that exist); last, the mean over
    the tasks of their per-task means, for each of the two that has pieces on all six."""
    named = " or ".join(f"`{label}`" for label in previous)
    columns = ["task", "action repeat", "seeds", "eval return at 100k frames [seed: return]", "mean ± 95% CI",
               "final agent, mean", "minutes per run", f"before: {named} (seeds: mean)", *SUMMARY_PEERS]
    rows, means, finals, before = [], [], [], []
    for task in TASKS:
        peers = [published_cell(name, task) for name in SUMMARY_PEERS]
        old = next(([p["final_return"] for p in groups[task, label, FRAMES]] for label in previous
                    if groups.get((task, label, FRAMES))), [])
        before.append(statistics.mean(old) if old else None)
        old_cell = f"{len(old)}: {statistics.mean(old):.0f}" if old else "–"
        pieces = groups.get((task, variant, FRAMES), [])
        if not pieces:
            rows.append([short(task), PLANET_ACTION_REPEAT[task], 0, f"none yet: {fill_command(task, variant)}",
                         "–", "–", "–", old_cell, *peers])
            continue
        last = [p["final_return"] for p in pieces]
        scored = [p["final_eval"]["return_mean"] for p in pieces if "final_eval" in p]
        means.append(statistics.mean(last))
        finals.append(statistics.mean(scored) if scored else None)
        returns = ", ".join(f"{p['seed']}: {p['final_return']:.0f}" for p in pieces)
        missing = [str(seed) for seed in SEEDS if seed not in {p["seed"] for p in pieces}]
        if missing:
            returns += f"; seed{'s' * (len(missing) > 1)} {', '.join(missing)} to run: {fill_command(task, variant)}"
        rows.append([short(task), PLANET_ACTION_REPEAT[task], len(pieces), returns, results.mean_ci(last),
                     _mean_cell(scored), f"{statistics.mean(p['seconds'] for p in pieces) / 60:.0f}", old_cell,
                     *peers])
    whole, whole_before = len(means) == len(TASKS), all(b is not None for b in before)
    if whole or whole_before:
        peers = [published_cell(name, None) for name in SUMMARY_PEERS]
        rows.append(["mean of the six (per-task means)", "", "", "", f"{statistics.mean(means):.0f}" if whole else "–",
                     _mean_cell(finals) if whole and all(f is not None for f in finals) else "–", "",
                     f"{statistics.mean(before):.0f}" if whole_before else "–", *peers])
    return {"columns": columns, "rows": rows}


def plot(groups: dict[tuple, list[dict]], path: Path = PLOT,
         previous: tuple[str, ...] = PREVIOUS_DEFAULT) -> Path | None:
    """The README's picture, eval return vs frames, one panel per task of the six (`summary_panels`):
    each seed faint, the mean over seeds bold, the final agents' mean ± 95% CI as a diamond at the end,
    the published figures as hollow black markers at the frames they are reported at (one legend for
    them under the panels). Every other variant is in the full table, not here: two dozen curves in one
    panel cannot be read. None (nothing written) when there are no pieces."""
    if not groups:
        return None
    return _curves(groups, summary_panels(groups, previous), path, published=True,
                   note=f"dmc and the preset before its last change per task ({' or '.join(previous)})")


def summary_panels(groups: dict[tuple, list[dict]],
                   previous: tuple[str, ...] = PREVIOUS_DEFAULT) -> dict[str, list[tuple]]:
    """Per task of the six, the keys the short table reads: the default (`dmc`) and the preset before
    its last change there (the first of `previous` with pieces), those with pieces."""
    panels = {}
    for task in TASKS:
        before = next((label for label in previous if groups.get((task, label, FRAMES))), None)
        panels[task] = [key for key in ((task, "dmc", FRAMES), (task, before, FRAMES)) if key in groups]
    return panels


def plot_transfer(groups: dict[tuple, list[dict]], path: Path = TRANSFER_PLOT) -> Path | None:
    """Eval return vs frames on each task a transfer variant has pieces on (`transfer_panels`): each
    seed faint, the mean bold, the final agents as diamonds. None (nothing written) when no transfer
    variant has pieces."""
    panels = transfer_panels(groups)
    if not panels:
        return None
    return _curves(groups, panels, path, published=False, note="transfer variants beside their scratch twins")


def transfer_panels(groups: dict[tuple, list[dict]]) -> dict[str, list[tuple]]:
    """Per task with a transfer variant's pieces: each such variant, after its scratch twin where the
    twin has pieces (at the same frames), each key once."""
    panels: dict[str, list[tuple]] = {}
    for key in sorted(groups, key=_order):
        if scratch_of(key[1]) is None:
            continue
        keys = panels.setdefault(key[0], [])
        keys.extend(k for k in (twin_key(groups, *key), key) if k is not None and k not in keys)
    return panels


def _curves(groups: dict[tuple, list[dict]], panels: dict[str, list[tuple]], path: Path, published: bool,
            note: str) -> Path:
    """Draw `panels` (task -> the group keys to draw there, in order) three to a row and save to `path`;
    each panel's legend sits inside it when its labels are short, under it when they are long (transfer
    variants' names run to a hundred characters)."""
    plt = pyplot()
    cmap = plt.get_cmap("tab20")
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    below = max((len(key[1]) for keys in panels.values() for key in keys), default=0) > 40
    legend_rows = max((len(keys) for keys in panels.values()), default=0) if below else 0
    fig, axes = plt.subplots(rows, cols, figsize=(max(5.5 * cols, 11), (3.8 + 0.16 * legend_rows) * rows + 1.0),
                             squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (task, keys) in zip(axes.flat, panels.items()):
        for i, key in enumerate(keys):  # colours by place in the panel: the default / scratch twin first, C0
            pieces, colour = groups[key], (f"C{i}" if len(keys) <= 10 else cmap(i % 20))
            for p in pieces:
                ax.plot([c[0] / 1000 for c in p["curve"]], [c[2] for c in p["curve"]], color=colour, alpha=0.3,
                        linewidth=0.8)
            shared = min(len(p["curve"]) for p in pieces)  # the evaluations every seed has
            xs = [pieces[0]["curve"][i][0] / 1000 for i in range(shared)]
            ys = [statistics.mean(p["curve"][i][2] for p in pieces) for i in range(shared)]
            label = key[1] + ("" if key[2] == FRAMES else f", {key[2]:,} frames")
            ax.plot(xs, ys, color=colour, linewidth=2, label=f"{label} ({len(pieces)} seed{'s' * (len(pieces) > 1)})")
            scored = [p["final_eval"]["return_mean"] for p in pieces if "final_eval" in p]
            if scored:
                ax.errorbar(xs[-1], statistics.mean(scored), yerr=results.ci95(scored), color=colour, marker="D",
                            markersize=5, capsize=3)
        for name, p in PUBLISHED.items() if published else ():
            if task in p.returns:
                ax.plot(p.frames / 1000, p.returns[task], color="black", marker=MARKERS[name], linestyle="none",
                        markersize=6, fillstyle="none")
        repeat = PLANET_ACTION_REPEAT.get(task)
        ax.set_title(short(task) + (f" (action repeat {repeat})" if repeat else "") + ("" if keys else ": no runs yet"),
                     fontsize=10)
        ax.set_xlabel("thousand frames (repeats included)")
        ax.set_ylabel("eval return")
        ax.set_xlim(left=0)
        ax.set_ylim(0, 1000)
        if keys and below:
            ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(0, -0.2), frameon=False)
        elif keys:
            ax.legend(fontsize=6.5, loc="upper left", framealpha=0.6)
    if published:
        from matplotlib.lines import Line2D

        fig.legend(handles=[Line2D([], [], color="black", marker=MARKERS[name], linestyle="none", fillstyle="none",
                                   label=f"{name} @{p.frames // 1000}k frames ({p.convention})")
                            for name, p in PUBLISHED.items()], loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(f"{note}.\nLines: evaluations during training (each seed faint, mean bold); diamonds: final "
                 "agents (mean ± 95% CI over seeds)" + ("; hollow black: published figures" if published else ""),
                 fontsize=8)
    fig.tight_layout(rect=(0, 0.07 if published else 0, 1, 0.95))
    return save_figure(fig, path, dpi=90)


# --- transfer: a variant that starts from a pretrained encoder, against its scratch twin ---------
TRANSFER_KEYS = ("encoder_from", "encoder_mode", "encoder_lr_scale", "encoder_frozen_layers")
"""A variant's overrides that make it a transfer run; without them it is its scratch twin."""


def scratch_of(variant: str) -> tuple[str, dict[str, str]] | None:
    """The (preset, overrides) of a transfer variant's scratch twin (`dmc+encoder_from=pretrained:dmc`
    -> `("dmc", {})`); None when `variant` transfers nothing."""
    preset, overrides = results.split_preset(variant)
    if "encoder_from" not in overrides:
        return None
    return preset, {k: v for k, v in overrides.items() if k not in TRANSFER_KEYS}


def twin_key(groups: dict[tuple, list[dict]], task: str, variant: str, steps: int) -> tuple | None:
    """The group key of a transfer variant's scratch twin on `task` at `steps` (its label may spell the
    overrides in another order), None when the twin has no pieces there or `variant` transfers nothing."""
    twin = scratch_of(variant)
    if twin is None:
        return None
    return next((k for k in groups if k[0] == task and k[2] == steps and results.split_preset(k[1]) == twin), None)


def mean_curve(pieces: list[dict]) -> list[tuple[int, float]]:
    """`[(frames, mean eval return over the pieces)]` at the evaluations every piece has."""
    shared = min(len(p["curve"]) for p in pieces)
    return [(pieces[0]["curve"][i][0], statistics.mean(p["curve"][i][2] for p in pieces)) for i in range(shared)]


def _scratch_cell(scratch: list[dict]) -> str:
    """A scratch twin's return at its last evaluation over its seeds: `289 ± 254 (3 seeds)`."""
    return f"{results.mean_ci([p['final_return'] for p in scratch])} ({len(scratch)} seed{'s' if len(scratch) != 1 else ''})"


def transfer_variants(source: str, scratch: str) -> list[str]:
    """The frozen and fine-tuned transfer variants of a pair: `scratch` plus the source's encoder."""
    return [f"{scratch}+encoder_from={SOURCE}{source}+encoder_mode={mode}" for mode in MODES]


def _objective_of(task: str, variant: str) -> str:
    """The self-supervised objective a variant trains with on `task`: its override, else its preset's."""
    preset, overrides = results.split_preset(variant)
    return overrides.get("objective") or Config.from_preset(preset, env=task).objective


def _encoder_objective(variant: str, run_objective: str) -> str:
    """The objective the variant's starting encoder was pretrained with: a shipped encoder's (its index
    entry), a `source:` run's (the variant's own: the source pretrains with the variant's model keys),
    a run folder's (its config.json), else `–`."""
    from agents.training.pretrained import encoder_objective

    source = results.split_preset(variant)[1]["encoder_from"]
    return run_objective if source.startswith(SOURCE) else encoder_objective(source)


def transfer_table(groups: dict[tuple, list[dict]]) -> dict:
    """One row per transfer variant (task, frames) with pieces, beside its scratch twin: the objective its
    encoder was pretrained with and the one the run trains with (they differ for a shipped encoder of
    another objective; a `source:` run pretrains with the variant's); probe R² of
    the encoder on the task before training; the eval return at the last evaluation; the speed-up
    (frames scratch's mean curve needs to reach scratch's own final score, divided by the frames the
    transfer's mean curve needs to reach it); the AUC (mean eval return over training) and ΔAUC. Then
    each `TRANSFER_PAIRS`, `TRANSFER_LEVERS` and `MULTI_DOMAIN_TARGETS` variant with no piece yet, with the
    command that fills it (and its twin's)."""
    rows = []

    def scratch_of_piece(task: str, variant: str, steps: int) -> list[dict]:
        key = twin_key(groups, task, variant, steps)
        return groups[key] if key else []

    for (task, variant, steps), pieces in sorted(groups.items(), key=lambda kv: _order(kv[0])):
        if scratch_of(variant) is None:
            continue
        scratch = scratch_of_piece(task, variant, steps)
        probes = [p["probe_curve"][0][1] for p in pieces if p.get("probe_curve") and p["probe_curve"][0][0] == 0]
        mine = mean_curve(pieces)
        each = ", ".join(f"{p['seed']}: {p['final_return']:.0f}" for p in pieces)
        speedup = delta = scratch_cell = "–"
        if scratch:
            base = mean_curve(scratch)
            level = statistics.mean(p["final_return"] for p in scratch)
            needs, gets = results.frames_to(base, level), results.frames_to(mine, level)
            speedup = f"{needs / gets:.2f}×" if needs and gets else f"< 1× (never reaches {level:.0f})"
            delta = f"{results.curve_auc(mine) - results.curve_auc(base):+.0f}"
            scratch_cell = _scratch_cell(scratch)
        _, overrides = results.split_preset(variant)
        ran = sorted({p["config"]["objective"] for p in pieces if p.get("config", {}).get("objective")})
        objective = "/".join(ran) or _objective_of(task, variant)
        rows.append([short(task), overrides["encoder_from"], _mode_cell(overrides),
                     _encoder_objective(variant, objective), objective, variant,
                     f"{steps:,}", len(pieces), results.mean_ci(probes, 2), f"{results.mean_ci([p['final_return'] for p in pieces])} [{each}]",
                     scratch_cell, speedup, f"{results.curve_auc(mine):.0f}", delta])
    planned = [(target, variant) for source, target, scratch_variant in TRANSFER_PAIRS
               for variant in transfer_variants(source, scratch_variant)]
    multi = [(target, MULTI_DOMAIN) for target in MULTI_DOMAIN_TARGETS]
    for target, variant in [*planned, *TRANSFER_LEVERS, *multi]:
        task = task_id(target)
        if any(t == task and results.split_preset(v) == results.split_preset(variant) for t, v, _ in groups):
            continue
        twin = _join(*scratch_of(variant))
        scratch = scratch_of_piece(task, variant, FRAMES)
        scratch_cell = _scratch_cell(scratch) if scratch else f"none yet: {fill_command(task, twin)}"
        objective = _objective_of(task, variant)
        transfer = results.split_preset(variant)[1]
        rows.append([target, transfer["encoder_from"], _mode_cell(transfer),
                     _encoder_objective(variant, objective), objective, variant, f"{FRAMES:,}",
                     f"none yet: {fill_command(task, variant)}", "–", "–", scratch_cell, "–", "–", "–"])
    return {"columns": ["task", "encoder from", "mode", "encoder's objective", "run's objective", "variant", "frames",
                        "seeds", "probe R² before training",
                        "eval return at those frames [seed: return]", "scratch twin's", "speed-up vs scratch",
                        "AUC (mean eval return)", "ΔAUC vs scratch"], "rows": rows}


def _mode_cell(overrides: dict[str, str]) -> str:
    """How a transfer variant treats its encoder: `frozen`, `finetune`, `init`, with the layers it keeps
    frozen (`finetune, first 2 layers frozen`) and a learning-rate scale other than the default."""
    cell = overrides.get("encoder_mode", "finetune")
    if int(overrides.get("encoder_frozen_layers", 0)):
        cell += f", first {overrides['encoder_frozen_layers']} layers frozen"
    if "encoder_lr_scale" in overrides:
        cell += f", encoder lr × {overrides['encoder_lr_scale']}"
    return cell


def _probe_cell(values: list[float], dims: list[list[float]]) -> str:
    """Mean over seeds, then the mean of each state dimension over seeds: `0.31 (0.80 / 0.47 / ...)`
    (the dimensions only when every seed has them)."""
    if not values:
        return "–"
    cell = f"{statistics.mean(values):.2f}"
    if dims and len(dims) == len(values) and all(len(d) == len(dims[0]) for d in dims):
        cell += " (" + " / ".join(f"{statistics.mean(column):.2f}" for column in zip(*dims)) + ")"
    return cell


def probe_table(groups: dict[tuple, list[dict]]) -> dict:
    """What the latents hold of the physics state, per (task, variant, frames) with pieces: the linear
    probe at the last evaluation on random-action episodes, and on the agent's own episodes (the final
    agent's evaluation, else the last evaluation's), mean over seeds and per state dimension; and the
    final agent's value check on its own episodes (`value_on_episodes`: correlation, R² and bias of the
    value against the discounted return that followed) and reward check (`reward_on_episodes`: correlation
    and bias of the reward head along the actions taken, and its bias on the best quarter of the steps);
    and the final agent's return noise-free beside its return with training's exploration noise on the
    same episodes (an agent held at rest by its noise-free plans does much better shaken)."""
    rows = []
    for (task, variant, steps), pieces in sorted(groups.items(), key=lambda kv: _order(kv[0])):
        with_random = [p for p in pieces if p.get("probe_curve")]
        random_dims = [p["probe_dims_curve"][-1][1] for p in with_random if p.get("probe_dims_curve")]
        own, own_dims = [], []
        for p in pieces:
            final = p.get("final_eval", {}).get("probe_policy")
            if final:
                own.append(final["r2"])
                own_dims.append(final["r2_per_dim"])
            elif p.get("probe_policy_curve"):
                own.append(p["probe_policy_curve"][-1][1])
                own_dims.append(p["probe_policy_dims_curve"][-1][1])
        valued = [p["final_eval"]["value_policy"] for p in pieces if p.get("final_eval", {}).get("value_policy")]
        value_cell = "–" if not valued else (
            f"{statistics.mean(v['corr'] for v in valued):.2f} / {statistics.mean(v['r2'] for v in valued):.2f} / "
            f"{statistics.mean(v['bias'] for v in valued):+.2f}")
        rewarded = [p["final_eval"]["reward_policy"] for p in pieces if p.get("final_eval", {}).get("reward_policy")]
        reward_cell = "–" if not rewarded else (
            f"{statistics.mean(v['corr'] for v in rewarded):.2f} / {statistics.mean(v['bias'] for v in rewarded):+.2f} / "
            f"{statistics.mean(v['bias_top'] for v in rewarded):+.2f}")
        shaken = [(p["final_eval"]["return_mean"], p["final_eval_training"]["return_mean"]) for p in pieces
                  if "final_eval" in p and "final_eval_training" in p]
        acting_cell = "–" if not shaken else (f"{statistics.mean(a for a, _ in shaken):.0f} / "
                                              f"{statistics.mean(b for _, b in shaken):.0f}")
        methods = sorted({p.get("probe_method", "8 random-action episodes, 3/4 fit, 1/4 scored") for p in with_random})
        rows.append([short(task), variant, f"{steps:,}", len(pieces),
                     _probe_cell([p["probe_curve"][-1][1] for p in with_random], random_dims),
                     f"{len(with_random)}", _probe_cell(own, own_dims), f"{len(own)}", value_cell, f"{len(valued)}",
                     reward_cell, f"{len(rewarded)}", acting_cell, f"{len(shaken)}",
                     "; ".join(methods) or "–"])
    return {"columns": ["task", "variant", "frames", "seeds", "probe R², random-action episodes, last evaluation "
                        "(mean; per state dim)", "seeds with it", "probe R², the agent's own episodes (final agent, "
                        "4-fold; per state dim)", "seeds with it", "value vs the return that followed, the final "
                        "agent's own episodes (correlation / R² / bias)", "seeds with it", "reward head along the final "
                        "agent's own steps (correlation / bias / bias on the best quarter)", "seeds with it",
                        "final agent's return: noise-free / with training's exploration noise (same episodes)",
                        "seeds with it", "random-action probe"],
            "rows": rows}


REWARD_BINS = (0.5, 0.8, 0.95)
"""Edges of the reward-head correlation bins of `reward_table`."""


def _ranks(values: list[float]) -> list[float]:
    """Ranks 0..n-1 of `values` (ties share their mean rank), for a Spearman correlation."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def reward_table(groups: dict[tuple, list[dict]]) -> dict:
    """Does the return follow the reward head's accuracy? Over every scratch piece of the six tasks with a
    final evaluation (every variant and seed; `encoder_from=` ones left out), binned by the correlation of
    the final agent's reward head with the rewards along its own steps (`reward_on_episodes`): the pieces,
    their tasks, and their final agents' mean return as a share of DrQ's figure on the task. Then the
    Spearman rank correlation of the two over all those pieces, and within each task with 3 or more
    (where the task's own difficulty is held fixed)."""
    drq = PUBLISHED["DrQ"].returns
    pairs = [(p["final_eval"]["reward_policy"]["corr"], p["final_eval"]["return_mean"] / drq[task], task)
             for (task, variant, _), pieces in groups.items() if task in TASKS and "encoder_from" not in variant
             for p in pieces if p.get("final_eval", {}).get("reward_policy")]
    edges = (float("-inf"), *REWARD_BINS, float("inf"))
    rows = []
    for low, high in zip(edges, edges[1:]):
        inside = [(c, share, task) for c, share, task in pairs if low <= c < high]
        name = (f"below {high}" if low == float("-inf") else f"{low} and above" if high == float("inf")
                else f"{low} to {high}")
        tasks = ", ".join(f"{short(t)} {sum(1 for *_, u in inside if u == t)}" for t in TASKS
                          if any(u == t for *_, u in inside))
        rows.append([name, len(inside), tasks or "–",
                     f"{statistics.mean(share for _, share, _ in inside):.2f}" if inside else "–", "–"])

    def spearman(some: list[tuple]) -> str:
        return f"{statistics.correlation(_ranks([c for c, *_ in some]), _ranks([s for _, s, _ in some])):.2f}"

    if len(pairs) > 2:
        rows.append(["all pieces", len(pairs), "", "–", spearman(pairs)])
    for task in TASKS:
        some = [pair for pair in pairs if pair[2] == task]
        if len(some) > 2:
            rows.append([f"{short(task)} alone", len(some), "", "–", spearman(some)])
    return {"columns": ["reward head's correlation with the rewards, final agent's own steps", "pieces",
                        "tasks (pieces)", "final agent's return, share of DrQ's (mean)",
                        "Spearman ρ of the two"], "rows": rows}


def save_table() -> None:
    """Rebuild the plots (dmc.png, dmc_transfer.png), docs/results/bench_dmc.json, bench_dmc_summary.json (the README's short table),
    bench_dmc_transfer.json, bench_dmc_probe.json and bench_dmc_reward.json (and the docs' tables) from every piece there is."""
    groups = load_groups()
    plot(groups)
    plot_transfer(groups)
    results.save("bench_dmc_transfer", transfer_table(groups), results.piece_names(PIECES), results.command_line(),
                 readme=False)
    results.save("bench_dmc_probe", probe_table(groups), results.piece_names(PIECES), results.command_line(),
                 readme=False)
    results.save("bench_dmc_reward", reward_table(groups), results.piece_names(PIECES), results.command_line(),
                 readme=False)
    results.save("bench_dmc", table(groups), results.piece_names(PIECES), results.command_line())
    results.save("bench_dmc_summary", summary_table(groups), results.piece_names(PIECES), results.command_line())


# --- speed: where a run's time goes, per task, without training one ---------------------------
SPEED_COLUMNS = ["task", "action repeat", "variant", "env step + render ms", "act ms",
                 "evaluation act ms per env (envs side by side)", "update ms",
                 "agent steps (training + evaluations)", "updates", "projected minutes per run", "env + act share",
                 "update share"]


def projection(cfg: dict, env_seconds: float, act_seconds: float, update_seconds: float,
               eval_act_seconds: float | None = None) -> dict:
    """What one run of `cfg` (a resolved config dict) would take from the medians of its parts: each
    agent step of training costs an env step (with rendering) and an act, each of the evaluations' an
    env step and `eval_act_seconds` (its env's share of a batched plan; `act_seconds` when not given);
    each update costs an update. Leaves out the seed phase's acting (random actions, cheaper), the
    online probe, checkpoints and logging, so a real run takes a little longer."""
    agent_steps = cfg["steps"] / cfg["action_repeat"]
    evaluations = cfg["steps"] // cfg["eval_every"]
    eval_steps = evaluations * cfg["eval_episodes"] * EPISODE_FRAMES / cfg["action_repeat"]
    updates = cfg["seed_updates"] + max(agent_steps - cfg["seed_steps"] / cfg["action_repeat"], 0) * cfg["updates_per_step"]
    eval_act = act_seconds if eval_act_seconds is None else eval_act_seconds
    acting = agent_steps * (env_seconds + act_seconds) + eval_steps * (env_seconds + eval_act)
    total = acting + updates * update_seconds
    return {"agent_steps": agent_steps + eval_steps, "updates": updates, "minutes": total / 60,
            "acting_share": acting / total, "update_share": 1 - acting / total}


EPISODE_FRAMES = 1000
"""Frames per DeepMind Control episode (the PlaNet benchmark's)."""


def speed_row(case: dict) -> list:
    """One row of the speed table from a measured case (see `scripts/bench_dmc.py speed=true`)."""
    p = case["projection"]
    return [short(case["task"]), case["action_repeat"], case["variant"], f"{1e3 * case['env_seconds']:.1f}",
            f"{1e3 * case['act_seconds']:.1f}",
            (f"{1e3 * case['eval_act_seconds']:.1f} ({case['eval_envs']})" if "eval_act_seconds" in case else "–"),
            f"{1e3 * case['update_seconds']:.0f}", f"{p['agent_steps']:,.0f}",
            f"{p['updates']:,.0f}", f"{p['minutes']:.0f}", f"{100 * p['acting_share']:.0f}%",
            f"{100 * p['update_share']:.0f}%"]


def save_speed(cases: list[dict], command: str) -> Path:
    """docs/results/bench_dmc_speed.json (and the docs' table) from measured cases."""
    return results.save("bench_dmc_speed", {"columns": SPEED_COLUMNS, "rows": [speed_row(c) for c in cases]},
                        {"cases": cases}, command)
