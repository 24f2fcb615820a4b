"""The tables of `scripts/bench_robustness.py`: one trained agent's report (a report of
`agents.analysis.robustness.robustness`: clean and under every perturbation), and the DMC
robustness benchmark built from pieces, one per bench_dmc run (`piece=true`).

    table = robustness_table(report, episodes=10)
    save_piece(piece_key("runs/bench_dmc/cartpole-swingup__dmc__100000__0", env), raw)
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from agents.analysis import results
from envs import COLOR_MODES

PIECES = results.RESULTS / "robustness_dmc"
"""Where each DMC robustness piece (one trained run's report) is saved."""
PUBLISHED_COLOR_HARD = {
    "DrQ": {"walker-walk": 520, "walker-stand": 770, "cartpole-swingup": 586, "ball_in_cup-catch": 365,
            "finger-spin": 776},
    "SODA (conv)": {"walker-walk": 697, "walker-stand": 930, "cartpole-swingup": 831, "ball_in_cup-catch": 892,
                    "finger-spin": 901},
    "SODA (overlay)": {"walker-walk": 692, "walker-stand": 893, "cartpole-swingup": 805, "ball_in_cup-catch": 949,
                       "finger-spin": 793},
    "SVEA (conv)": {"walker-walk": 760, "walker-stand": 942, "cartpole-swingup": 837, "ball_in_cup-catch": 961,
                    "finger-spin": 977},
    "SVEA (overlay)": {"walker-walk": 749, "walker-stand": 933, "cartpole-swingup": 832, "ball_in_cup-catch": 959,
                       "finger-spin": 972},
}
"""Published DMC-GB color_hard returns after 500k frames of training, mean over seeds: the results table
of the DMC-GB repository's README (nicklashansen/dmcontrol-generalization-benchmark, figures/
results_table.png, "random colors"; SVEA's paper, Hansen et al. 2021), which our anchors file quotes for
SVEA (conv). DrQ there is trained without appearance augmentation, as our `dmc` is. SGQN publishes no
color_hard figures: its table (SuReLI/SGQN, DMC/figures/sgqn_perf.png) is video_easy / video_hard
(video_hard mean 688), a mode we cannot build here."""


PROTOCOL = (("cartpole-swingup", "walker-walk"),
            ("dmc", "dmc+appearance=conv", "dmc+appearance=remap+appearance_share=0.5"), (0, 1, 2))
"""The robustness benchmark's (tasks, variants, seeds): DMC-GB's two colour tasks that every method reports,
trained at the `dmc` protocol without appearance augmentation, with SVEA's random convolution, and with
our colour remap on half of each batch (the best color_all_hard share of the first seeds, 2026-12-07), three
seeds. The table lists every (task, variant) here, with the commands that fill its missing seeds."""


DMCGB_MODES = ("color_easy", "color_hard")
COLOUR_MODES_VERSION = "dmcgb-sets"
"""What a piece's `color_easy` / `color_hard` mean, recorded in each piece saved since 2026-12-07's fifteenth
session: drawn as DMC-GB's shipped sets (`envs/dmc_colors.py`). A piece without it that has those keys was
evaluated under the earlier modes (now `color_all_easy` / `color_all_hard`) and is refused."""


def _check_colour_modes(piece: dict) -> None:
    """Refuse a piece whose `color_easy` / `color_hard` may be the earlier, harder modes."""
    if piece.get("colour_modes") != COLOUR_MODES_VERSION and any(c in piece["perturbations"] for c in DMCGB_MODES):
        raise ValueError(f"the robustness piece of {piece['task']} {piece['variant']} seed {piece['seed']} has "
                         "color_easy / color_hard but no colour_modes entry: it was evaluated under the earlier modes "
                         "(now color_all_easy / color_all_hard). Rename its keys to those, or evaluate the run again "
                         "with bench_robustness.py piece=true.")


def fill_command(task: str, variant: str, seeds: list[int]) -> str:
    """The command that trains the missing seeds of (task, variant) with bench_dmc.py and evaluates each
    as a robustness piece (`robustness=true`: bench_robustness.py's `piece=true` on each run folder)."""
    return (f"`python scripts/bench_dmc.py tasks={task} variants={variant} seeds={','.join(map(str, seeds))} "
            "robustness=true`")


PUBLISHED_COLUMN = f"color_hard @500k frames, published ({' · '.join(PUBLISHED_COLOR_HARD)})"


def _published(task: str) -> str:
    """The published color_hard returns on `task`, one per method, in one cell: `586 · 831 · ...` (`–`
    where a method has none)."""
    return " · ".join(str(figures.get(task, "–")) for figures in PUBLISHED_COLOR_HARD.values())


def _r2(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def robustness_table(report: dict, episodes: int) -> dict:
    """One row for clean, then one per (perturbation, severity): return, probe R² and their changes."""
    clean = report["clean"]
    rows = [["clean", "-", f"{clean['return_mean']:.1f} ± {clean['return_std']:.1f}", "-", _r2(clean["probe_r2"]), "-"]]
    for r in report["perturbations"].values():
        rows.append([r["name"], r["severity"] or "–", f"{r['return_mean']:.1f} ± {r['return_std']:.1f}",
                     f"{r['return_delta']:+.1f}", _r2(r["probe_r2"]),
                     "-" if r["probe_r2_delta"] is None else f"{r['probe_r2_delta']:+.3f}"])
    return {"columns": ["perturbation", "severity", f"return (mean ± std, {episodes} episodes)", "Δ return",
                        "probe R² (held out)", "Δ probe R²"], "rows": rows}


def piece_key(run_dir: str | Path, env: str) -> tuple[str, str, int]:
    """(task, variant, seed) of a bench_dmc run folder named `<task>__<variant>__<frames>__<seed>`;
    a ValueError for any other folder or a run that is not on DeepMind Control."""
    match = re.fullmatch(r"(.+?)__(.+)__(\d+)__(\d+)", Path(run_dir).name)
    if not env.startswith("dm_control/") or match is None:
        raise ValueError(f"piece=true takes a DeepMind Control run of bench_dmc.py (a folder named "
                         f"<task>__<variant>__<frames>__<seed>); {run_dir} of {env} is not one: drop piece=true.")
    return match.group(1), match.group(2), int(match.group(4))


def piece_path(task: str, variant: str, seed: int) -> Path:
    """Where the piece of a bench_dmc run (short task name, variant as its folder spells it) lives."""
    return PIECES / f"{task}__{variant}__{seed}.json"


def save_piece(key: tuple[str, str, int], raw: dict) -> Path:
    """Save one run's report as its piece and rebuild `bench_robustness_dmc` from every piece."""
    task, variant, seed = key
    path = piece_path(task, variant, seed)
    # The report's own "seed" is the evaluation episodes' seed; the piece's is the training run's.
    import torch

    threads = torch.get_num_threads()
    results.write_piece(path, {**raw, "eval_seed": raw.get("seed"), "task": task, "variant": variant, "seed": seed,
                               "colour_modes": COLOUR_MODES_VERSION,
                               "command": results.command_line(with_threads=True), "threads": threads,
                               "machine": {**results.machine(), "threads": threads}})
    save_dmc_table()
    return path


def _share(piece: dict, condition: str) -> float | None:
    shifted = piece["perturbations"].get(condition)
    clean = piece["clean"]["return_mean"]
    return None if shifted is None or not clean else shifted["return_mean"] / clean


def dmc_table() -> dict:
    """Per (task, variant): seeds (with the command for the `PROTOCOL` seeds still missing); clean return
    (mean ± 95% CI, every seed); each condition's return as a share of clean (mean over seeds); probe R²
    clean and under each colour mode the pieces have; the published color_hard returns. A `PROTOCOL` (task,
    variant) with no piece yet gets a row with the command that fills it."""
    groups = results.load_pieces(PIECES, lambda p: (p["task"], p["variant"]))
    for pieces in groups.values():
        for p in pieces:
            _check_colour_modes(p)
    # DMC-GB's two modes always have columns (the published figures are of its color_hard), ours where measured.
    conditions = sorted({*DMCGB_MODES, *(c for ps in groups.values() for p in ps for c in p["perturbations"])},
                        key=lambda c: (COLOR_MODES.index(c) if c in COLOR_MODES else len(COLOR_MODES), c))
    colours = [c for c in COLOR_MODES if c in conditions]
    rows = []
    for (task, variant), pieces in sorted(groups.items()):
        clean = [p["clean"]["return_mean"] for p in pieces]
        each = ", ".join(f"{p['seed']}: {p['clean']['return_mean']:.0f}" for p in pieces)
        shares = []
        for c in conditions:
            known = [s for s in (_share(p, c) for p in pieces) if s is not None]
            means = [p["perturbations"][c]["return_mean"] for p in pieces if c in p["perturbations"]]
            shares.append(f"{statistics.mean(means):.0f} ({100 * statistics.mean(known):.0f}%)" if known else "–")
        probes = []
        for c in ("clean", *colours):
            values = [(p["clean"] if c == "clean" else p["perturbations"].get(c, {})).get("probe_r2") for p in pieces]
            values = [v for v in values if v is not None]
            probes.append(results.mean_ci(values, 2))
        published = _published(task)
        seeds: int | str = len(pieces)
        missing = [seed for seed in PROTOCOL[2] if seed not in {p["seed"] for p in pieces}]
        if task in PROTOCOL[0] and variant in PROTOCOL[1] and missing:
            seeds = f"{len(pieces)}; seeds {', '.join(map(str, missing))} to run: {fill_command(task, variant, missing)}"
        rows.append([task, variant, seeds, f"{results.mean_ci(clean)} [{each}]", *shares, *probes, published])
    for task in PROTOCOL[0]:
        for variant in PROTOCOL[1]:
            if (task, variant) not in groups:
                rows.append([task, variant, f"none yet: {fill_command(task, variant, list(PROTOCOL[2]))}", "–",
                             *(["–"] * (len(conditions) + 1 + len(colours))), _published(task)])
    rows.sort(key=lambda r: (r[0], r[1]))
    return {"columns": ["task", "variant", "seeds", "clean return [seed: return]",
                        *(f"{c} (share of clean)" for c in conditions),
                        "probe R² clean", *(f"probe R² {c}" for c in colours), PUBLISHED_COLUMN], "rows": rows}


def save_dmc_table() -> None:
    """Rebuild docs/results/bench_robustness_dmc.json (and its docs table) from every piece there is."""
    results.save("bench_robustness_dmc", dmc_table(), results.piece_names(PIECES), results.command_line())
