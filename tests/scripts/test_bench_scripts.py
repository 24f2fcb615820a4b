"""Smoke tests of the benchmark scripts at tiny sizes: they run, and write a table the README can
show (into a temporary folder, via PIXELWORLD_RESULTS, so docs/results and the README stay as they are);
and they refuse a key they do not know with one error line, before writing anything."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(name: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIXELWORLD_RESULTS": str(out)}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], check=False, cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def bench(name: str, out: Path, *args: str) -> dict:
    proc = run_script(name, out, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["bench_dmc", "bench_envs", "bench_planner", "bench_probe", "bench_replay",
                                  "bench_sample_efficiency", "bench_throughput", "bench_transfer",
                                  "bench_world_model"])
def test_bench_script_refuses_an_unknown_key_before_doing_anything(tmp_path, name):
    proc = run_script(name, tmp_path, "nosuchkey=1")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"{name}.py: error: Unknown key 'nosuchkey'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,arg,message", [
    ("bench_sample_efficiency", "seeds=0,x", "seeds='0,x': give whole numbers separated by commas"),
    ("bench_sample_efficiency", "only=Pendulum-v1:both", "only='Pendulum-v1:both': write it as only=<env>:<objective>:<seed>"),
    ("bench_sample_efficiency", "only=Pendulum-v1:both:first", "write it as only=<env>:<objective>:<seed>"),
    ("bench_transfer", "only=Pendulum-v1>CartPole-v1", "write it as only=<source>target>:<mode>:<seed>"),
    ("bench_throughput", "num_envs=one", "num_envs='one': give whole numbers"),
    ("bench_probe", "seeds=", "seeds='': give whole numbers"),
    ("bench_envs", "workers=1,,2", "workers='1,,2': give whole numbers"),
    ("bench_dmc", "seeds=0,x", "seeds='0,x': give whole numbers separated by commas"),
    ("bench_dmc", "only=cartpole-swingup:dmc", "write it as only=<task>:<variant>:<seed>"),
    ("bench_dmc", "tasks=cartpole", "task 'cartpole': name a DeepMind Control task as <domain>-<task>"),
    ("bench_dmc", "variants=dmc+augment", "write a preset with overrides as preset+key=value"),
    ("bench_dmc", "variants=dmc,fast", "unknown preset 'fast'"),
    ("bench_dmc", "variants=dmc+augment=sideways", "augment='sideways' is not valid"),
    ("bench_dmc", "only=cheetah-run:dmc+seed=3:0", "the benchmark sets seed itself"),
    ("bench_dmc", "threads=0", "threads=0 must be at least 1"),
])
def test_bench_script_refuses_a_malformed_list_with_one_line(tmp_path, name, arg, message):
    proc = run_script(name, tmp_path, arg)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"{name}.py: error: " in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(tmp_path.rglob("*.json"))


def test_bench_planner_times_ours_and_torchrls_planner_per_preset_and_variant(tmp_path):
    readme = (ROOT / "README.md").read_text()
    result = bench("bench_planner", tmp_path, "presets=debug,debug+samples=32", "calls=2", "compiled=false")
    rows = result["table"]["rows"]
    assert [(r[0], r[1]) for r in rows] == [(p, q) for p in ("debug", "debug+samples=32") for q in ("fp32", "bf16")]
    assert "S32" in rows[2][2] and "S64" in rows[0][2]
    for case in result["raw"]["cases"]:
        assert case["act_ms"] > 0 and case["torchrl_mppi_ms"] > 0 and case["speedup_vs_torchrl"] > 0
    assert (ROOT / "README.md").read_text() == readme


def test_bench_sample_efficiency_piece_gets_a_final_evaluation_and_a_rerun_reproduces_it(tmp_path, monkeypatch):
    out, runs = tmp_path / "results", tmp_path / "runs"
    args = ("preset=debug", "steps=400", "only=Pendulum-v1:contrastive:0", "final_episodes=2", f"runs={runs}")
    result = bench("bench_sample_efficiency", out, *args)
    path = out / "sample_efficiency" / "Pendulum-v1__debug__contrastive__400__0.json"
    piece = json.loads(path.read_text())
    assert [c[0] for c in piece["curve"]] == [200, 400]
    final = piece["final_eval"]
    assert final["episodes"] == 2 and len(final["returns"]) == 2 and final["checkpoint"] == "step_000000400"
    assert final["return_mean"] == pytest.approx(sum(final["returns"]) / 2)
    assert -2000 < final["return_mean"] < 0  # Pendulum's range over 200 steps
    row = result["table"]["rows"][0]
    assert "final agent, 2 episodes (mean ± 95% CI)" in result["table"]["columns"]
    assert row[result["table"]["columns"].index("final agent, 2 episodes (mean ± 95% CI)")] == f"{final['return_mean']:.0f}"

    # A piece saved without a final evaluation, its run folder gone: rerun=true trains it again into the
    # same curve (training is deterministic under a seed) and adds the same final evaluation.
    del piece["final_eval"]
    path.write_text(json.dumps(piece))
    shutil.rmtree(runs)
    skipped = run_script("bench_sample_efficiency", out, *args)
    assert skipped.returncode == 0 and "rerun=true" in skipped.stdout
    assert "final_eval" not in json.loads(path.read_text())
    bench("bench_sample_efficiency", out, *args, "rerun=true")
    again = json.loads(path.read_text())
    assert again["final_eval"]["returns"] == final["returns"]
    assert [c[2] for c in again["curve"]] == [c[2] for c in piece["curve"]]

    # A stored curve the rerun cannot reproduce: one clear error, the piece left as it was. In process,
    # with the rerun's training replaced by its result, a curve one evaluation off (training it a third
    # time would show nothing more: the comparison is what is tested).
    from agents.analysis.bench import sample_efficiency
    del again["final_eval"]
    again["curve"][-1][2] += 1.0
    path.write_text(json.dumps(again))
    shutil.rmtree(runs)
    rerun_result = {**again, "curve": piece["curve"], "run_dir": str(runs / "rerun")}
    monkeypatch.setattr(sample_efficiency, "run", lambda *a, **k: rerun_result)
    with pytest.raises(SystemExit, match="did not reproduce the stored evaluation curve"):
        sample_efficiency.add_final_eval(path, 2, rerun=True, runs=runs)
    assert json.loads(path.read_text()) == again


def test_sample_efficiency_plot_sets_each_ablation_beside_the_plain_preset(tmp_path):
    from agents.analysis.bench import sample_efficiency

    curve = [[200, 1.0, -900.0], [400, 2.0, -700.0]]
    groups = {("Pendulum-v1", preset, objective, 400): [{"curve": curve, "final_eval": {"return_mean": -650.0}}]
              for preset, objective in (("debug", "both"), ("debug", "masked"), ("debug+samples=32", "both"))}
    panels = sample_efficiency.panels(groups)
    assert [title for title, _ in panels] == ["Pendulum-v1 (debug)", "Pendulum-v1: ablations"]
    assert [(name, colour, style) for _, colour, style, name in panels[1][1]] == [
        ("both, debug", "C2", "-"), ("both, debug+samples=32", "C3", "--")]
    assert sample_efficiency.plot(groups, tmp_path / "curves.png").stat().st_size > 0
    assert sample_efficiency.plot({}, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


DMC_SMOKE = "debug+eval_every=1000+checkpoint_every=1000"
"""The `debug` preset evaluating (one 1000-frame episode) only every 1000 frames: DeepMind Control
renders at ~200 frames/s on one core, so evaluations are most of a tiny run's time."""


def test_bench_dmc_piece_resumes_a_stopped_run_and_gets_a_final_evaluation(tmp_path, monkeypatch):
    pytest.importorskip("shimmy")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the stopped run below, as the bench runs its pieces (threads=1)
    out, runs = tmp_path / "results", tmp_path / "runs"
    # A piece stopped halfway (its checkpoint at 1000 of its 2000 frames): the bench resumes it.
    run_dir = runs / f"cartpole-swingup__{DMC_SMOKE}__2000__0"
    stopped = run_script("train", out, "env=dm_control/cartpole-swingup-v0", "preset=debug", "eval_every=1000",
                         "checkpoint_every=1000", "seed=0", "steps=1000", f"run_dir={run_dir}", "exp=bench_dmc")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    # eval_also reaches the resumed half's training (a key a resume may add), not the piece's label.
    args = ("tasks=cartpole-swingup", "seeds=0", f"variants={DMC_SMOKE}", "steps=2000", "final_episodes=1",
            f"runs={runs}", "eval_also=dm_control/cartpole-balance-v0")
    result = bench("bench_dmc", out, *args)
    piece = json.loads((out / "dmc" / f"cartpole-swingup__{DMC_SMOKE}__2000__0.json").read_text())
    [(step, balance)] = piece["eval_also_curves"]["cartpole-balance-v0"]  # the upright start: evaluated at 2000
    assert step == 2000 and 0 <= balance <= 1000 and list(piece["eval_also_curves"]) == ["cartpole-balance-v0"]
    assert piece["task"] == "dm_control/cartpole-swingup-v0" and piece["action_repeat"] == 8  # the PlaNet repeat
    assert [c[0] for c in piece["curve"]] == [1000, 2000] and piece["curve"][1][1] > piece["curve"][0][1]
    assert piece["run_dir"] == str(run_dir) and piece["threads"] == piece["machine"]["threads"] == 1
    assert piece["frames_per_second"] > 0 and piece["updates_per_second"] > 0 and piece["updates"] > 0
    assert piece["final_eval"]["episodes"] == 1 and piece["final_eval"]["checkpoint"] == "step_000002000"
    # the same episode with training's exploration noise on
    assert piece["final_eval_training"]["episodes"] == 1 and piece["final_eval_training"]["checkpoint"] == "step_000002000"
    assert 0 <= piece["final_eval"]["return_mean"] <= 1000
    columns, rows = result["table"]["columns"], result["table"]["rows"]
    row = next(r for r in rows if r[0] == "cartpole-swingup" and r[2] == DMC_SMOKE)
    assert row[columns.index("seeds")] == 1 and row[columns.index("frames")] == "2,000"
    assert row[columns.index("final agent, 1 episode (mean ± 95% CI)")] == f"{piece['final_eval']['return_mean']:.0f}"
    assert row[columns.index("DrQ @100k frames (PlaNet repeats)")] == "759"
    # The smoke variant's one row, and on each of the six tasks `dmc` and the ablations with the command
    # that fills them; the smoke variant has no rows on the other tasks (a search variant shows what it has).
    from agents.analysis.bench import dmc
    assert len(rows) == 6 * (1 + len(dmc.ABLATIONS)) + 1 and sum(r[4] == 1 for r in rows) == 1
    assert (out / "dmc.png").stat().st_size > 0
    (out / "bench_dmc.json").unlink()  # table=true: the same table from the saved pieces, training nothing
    rebuilt = bench("bench_dmc", out, "table=true")
    assert rebuilt["table"] == result["table"] and rebuilt["command"] == "python scripts/bench_dmc.py table=true"

    again = run_script("bench_dmc", out, *args)  # the piece is saved: nothing trains again
    assert again.returncode == 0 and "run folder:" not in again.stdout + again.stderr
    assert json.loads((out / "dmc" / f"cartpole-swingup__{DMC_SMOKE}__2000__0.json").read_text()) == piece


def test_bench_dmc_transfers_from_a_source_task_it_pretrains_first(tmp_path):
    pytest.importorskip("shimmy")
    out, runs = tmp_path / "results", tmp_path / "runs"
    variant = f"{DMC_SMOKE}+encoder_from=source:cartpole-balance+encoder_mode=finetune"
    args = (f"only=cartpole-swingup:{variant}:0", "steps=1000", "final_episodes=0", "source_frames=300",
            "source_updates=20", f"runs={runs}")
    bench("bench_dmc", out, *args)
    source = runs / "source__cartpole-balance__debug+action_repeat=8+checkpoint_every=1000+eval_every=1000__300x20"
    assert not source.exists()  # eval_every and checkpoint_every are online keys: not the source's
    source = runs / "source__cartpole-balance__debug+action_repeat=8__300x20"
    assert (source / "encoder.pt").is_file()
    piece = json.loads((out / "dmc" / f"cartpole-swingup__{variant.replace(':', '-')}__1000__0.json").read_text())
    assert f"encoder_from={source}" in piece["command"] and piece["config"]["encoder_from"] == str(source)
    assert "env=dm_control/cartpole-balance-v0" in piece["source_command"] and "action_repeat=8" in piece["source_command"]
    assert piece["probe_curve"][0][0] == 0  # the transferred encoder's probe before training
    table = json.loads((out / "bench_dmc_transfer.json").read_text())["table"]
    row = dict(zip(table["columns"], table["rows"][0]))
    assert row["encoder from"] == "source:cartpole-balance" and row["mode"] == "finetune"
    again = run_script("bench_dmc", out, *args)  # saved: neither the source nor the piece trains again
    assert again.returncode == 0 and "run folder:" not in again.stdout + again.stderr
    bad = run_script("bench_dmc", out, "only=cartpole-swingup:dmc+encoder_from=source:cartpole:0")
    assert bad.returncode == 2 and "name a DeepMind Control task as <domain>-<task>" in bad.stderr


def _dmc_piece(task: str, variant: str, seed: int, last: float, final: float | None) -> dict:
    piece = {"task": task, "variant": variant, "seed": seed, "steps": 100_000, "final_return": last,
             "curve": [[50_000, 1500.0, last / 2], [100_000, 3000.0, last]], "seconds": 3000.0,
             "frames_per_second": 40.0, "updates_per_second": 5.0, "updates": 25_000, "action_repeat": 8}
    if final is not None:
        piece["final_eval"] = {"episodes": 10, "return_mean": final}
    return piece


def test_dmc_table_lists_every_seed_the_published_figures_and_the_commands_still_to_run(tmp_path):
    from agents.analysis.bench import dmc

    groups = {(task, "dmc", 100_000): [_dmc_piece(task, "dmc", seed, 100.0 * (i + 1) + seed, 200.0 + seed)
                                       for seed in (0, 1, 2)] for i, task in enumerate(dmc.TASKS)}
    shifted = ("dm_control/cheetah-run-v0", "dmc+augment=shift", 100_000)
    groups[shifted] = [_dmc_piece(shifted[0], shifted[1], 0, 300.0, None), _dmc_piece(shifted[0], shifted[1], 1, 310.0, 305.0)]
    result = dmc.table(groups)
    columns, rows = result["columns"], result["rows"]
    assert columns[-8:] == ["DrQ @100k frames (PlaNet repeats)", "CURL @100k frames (PlaNet repeats)",
                            "MLR @100k frames (PlaNet repeats)", "PlayVirtual @100k frames (PlaNet repeats)",
                            "DreamerV3 @100k frames (repeat 1, its config)", "DrQ-v2 @100k frames (repeat 2)",
                            "MR.Q @100k frames (repeat 2)", "TD-MPC2 @200k frames (repeat 2; its 100k steps)"]
    by = {(r[0], r[2]): dict(zip(columns, r)) for r in rows}
    cartpole = by["cartpole-swingup", "dmc"]
    assert cartpole["eval return at those frames (mean ± 95% CI) [seed: return]"] == "101 ± 2 [0: 100, 1: 101, 2: 102]"
    assert cartpole["final agent, 10 episodes (mean ± 95% CI)"] == "201 ± 2" and cartpole["minutes per run"] == "50"
    assert cartpole["TD-MPC2 @200k frames (repeat 2; its 100k steps)"] == "–"  # not reported on cartpole
    assert by["cheetah-run", "dmc+augment=shift"]["final agent, 10 episodes (mean ± 95% CI)"] == "305 (1 of 2 seeds)"
    assert "[0: 300, 1: 310]" in by["cheetah-run", "dmc+augment=shift"][
        "eval return at those frames (mean ± 95% CI) [seed: return]"]
    walker = by["walker-walk", "dmc+augment=none"]  # an ablation with no piece there yet: the command that fills it
    assert walker["seeds"] == "none yet: `python scripts/bench_dmc.py tasks=walker-walk variants=dmc+augment=none`"
    assert ("walker-walk", "dmc+augment=shift") not in by  # a variant outside the ablations: only where it has pieces
    assert walker["MLR @100k frames (PlaNet repeats)"] == "643"
    mean = by["mean of the six", "dmc"]  # only `dmc` has all six tasks
    assert ("mean of the six", "dmc+augment=shift") not in by
    assert mean["eval return at those frames (mean ± 95% CI) [seed: return]"] == "351"  # (101 + ... + 601) / 6
    assert [mean[c] for c in columns[-8:]] == ["688", "560", "773", "–", "542", "334", "448", "–"]
    assert rows[-1][0] == "mean of the six" and [r[0] for r in rows[:2]] == ["cartpole-swingup"] * 2

    searched = ("dm_control/cartpole-swingup-v0", "dmc+discount=0.9", 100_000)  # a tuning variant: its rows only
    rows = dmc.table({**groups, searched: [_dmc_piece(searched[0], searched[1], 0, 50.0, None)]})["rows"]
    assert [r[0] for r in rows if r[2] == "dmc+discount=0.9"] == ["cartpole-swingup"]
    empty = dmc.table({})["rows"]  # no piece at all: every task with its commands and the published figures
    assert [r[4] for r in empty] == [f"none yet: `python scripts/bench_dmc.py tasks={dmc.short(t)}"
                                     + ("`" if v == "dmc" else f" variants={v}`") for t in dmc.TASKS
                                     for v in ("dmc", *sorted(dmc.ABLATIONS))]
    assert dmc.plot(groups, tmp_path / "dmc.png").stat().st_size > 0
    assert dmc.plot({}, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    # The plot draws what the short table reads: `dmc` and the preset before its last change, not the search.
    before = ("dm_control/cheetah-run-v0", "dmc+enc_act=silu", 100_000)
    panels = dmc.summary_panels({**groups, before: groups[shifted]})
    assert list(panels) == list(dmc.TASKS) and panels["dm_control/cheetah-run-v0"] == [
        ("dm_control/cheetah-run-v0", "dmc", 100_000), before]
    assert all(keys == [(t, "dmc", 100_000)] for t, keys in panels.items() if t != before[0])


def test_dmc_summary_table_gives_the_default_per_task_with_every_seed_and_the_mean_once_all_six_have_one():
    from agents.analysis.bench import dmc

    groups = {(task, "dmc", 100_000): [_dmc_piece(task, "dmc", seed, 100.0 * (i + 1) + seed, 200.0 + seed)
                                       for seed in range(1 + (i == 0) * 2)] for i, task in enumerate(dmc.TASKS)}
    groups["dm_control/cheetah-run-v0", "dmc+augment=none", 100_000] = [  # another variant: not in this table
        _dmc_piece("dm_control/cheetah-run-v0", "dmc+augment=none", 0, 999.0, 999.0)]
    result = dmc.summary_table(groups, previous=("dmc+old=1",))
    by = {r[0]: dict(zip(result["columns"], r)) for r in result["rows"]}
    assert list(by) == [*map(dmc.short, dmc.TASKS), "mean of the six (per-task means)"]
    cartpole = by["cartpole-swingup"]
    assert cartpole["seeds"] == 3 and cartpole["eval return at 100k frames [seed: return]"] == "0: 100, 1: 101, 2: 102"
    assert cartpole["mean ± 95% CI"] == "101 ± 2" and cartpole["final agent, mean"] == "201"
    assert cartpole["DrQ"] == "759" and cartpole["CURL"] == "582" and cartpole["DreamerV3"] == "597"
    assert by["cheetah-run"]["mean ± 95% CI"] == "300"  # one seed: no interval, and the ablation's 999 left out
    assert by["cheetah-run"]["eval return at 100k frames [seed: return]"] == (  # and the command for the others
        "0: 300; seeds 1, 2 to run: `python scripts/bench_dmc.py tasks=cheetah-run`")
    mean = by["mean of the six (per-task means)"]
    assert mean["mean ± 95% CI"] == "350" and mean["DrQ"] == "688" and mean["CURL"] == "560"  # (101 + 200 + ... + 600) / 6
    assert cartpole["before: `dmc+old=1` (seeds: mean)"] == "–"  # the earlier default has no piece here
    del groups["dm_control/walker-walk-v0", "dmc", 100_000]
    rows = dmc.summary_table(groups, previous=("dmc+old=1",))["rows"]  # a task without a piece: the command, no mean
    assert rows[-1][0] == "walker-walk" and rows[-1][3] == "none yet: `python scripts/bench_dmc.py tasks=walker-walk`"
    groups.update({(task, "dmc+old=1", 100_000): [_dmc_piece(task, "dmc+old=1", seed, 60.0 + seed, None)
                                                  for seed in (0, 1)] for task in dmc.TASKS[1:]})
    cartpole_id = dmc.TASKS[0]  # the earlier default under another label on one task: the second label serves there
    groups[cartpole_id, "dmc+old=2", 100_000] = [_dmc_piece(cartpole_id, "dmc+old=2", 0, 66.0, None)]
    result = dmc.summary_table(groups, previous=("dmc+old=1", "dmc+old=2"))  # on all six: its mean row
    by = {r[0]: dict(zip(result["columns"], r)) for r in result["rows"]}
    column = "before: `dmc+old=1` or `dmc+old=2` (seeds: mean)"
    assert by["walker-walk"][column] == "2: 60" and by["cartpole-swingup"][column] == "1: 66"
    mean = by["mean of the six (per-task means)"]
    assert mean["mean ± 95% CI"] == "–" and mean[column] == "61"  # (66 + 5 x 60.5) / 6


def test_dmc_reward_table_bins_pieces_by_their_reward_head_and_ranks_it_against_the_return():
    from agents.analysis.bench import dmc

    def piece(task, variant, seed, corr, final):
        p = _dmc_piece(task, variant, seed, final, final)
        p["final_eval"]["reward_policy"] = {"corr": corr}
        return p

    cartpole, reacher = "dm_control/cartpole-swingup-v0", "dm_control/reacher-easy-v0"
    groups = {(cartpole, "dmc", 100_000): [piece(cartpole, "dmc", 0, 0.99, 759.0), piece(cartpole, "dmc", 1, 0.9, 379.5)],
              (reacher, "dmc", 100_000): [piece(reacher, "dmc", 0, -0.1, 60.1), piece(reacher, "dmc", 1, 0.6, 120.2)],
              (cartpole, "dmc+encoder_from=pretrained:dmc", 100_000): [piece(cartpole, "x", 0, 0.1, 759.0)],  # left out
              (reacher, "dmc+augment=none", 100_000): [_dmc_piece(reacher, "dmc+augment=none", 0, 5.0, 5.0)]}  # no check
    result = dmc.reward_table(groups)
    rows = {r[0]: r[1:] for r in result["rows"]}
    assert rows["below 0.5"] == [1, "reacher-easy 1", "0.10", "–"]  # 60.1 of DrQ's 601
    assert rows["0.5 to 0.8"] == [1, "reacher-easy 1", "0.20", "–"]
    assert rows["0.8 to 0.95"] == [1, "cartpole-swingup 1", "0.50", "–"]
    assert rows["0.95 and above"] == [1, "cartpole-swingup 1", "1.00", "–"]
    assert rows["all pieces"] == [4, "", "–", "1.00"]
    assert "cartpole-swingup alone" not in rows  # two pieces: too few to rank
    groups[cartpole, "dmc+augment=none", 100_000] = [piece(cartpole, "dmc+augment=none", 0, 0.95, 100.0)]
    rows = {r[0]: r[1:] for r in dmc.reward_table(groups)["rows"]}
    assert rows["cartpole-swingup alone"] == [3, "", "–", "0.50"]  # ranks (2, 0, 1) against (2, 1, 0)
    assert dmc._ranks([3.0, 1.0, 3.0, 2.0]) == [2.5, 0.0, 2.5, 1.0]
    assert [r[1] for r in dmc.reward_table({})["rows"]] == [0, 0, 0, 0]  # nothing to rank


def test_a_source_run_pretrains_at_its_targets_action_repeat_whichever_way_the_task_is_named(tmp_path):
    from agents.analysis.bench import dmc

    variant = "dmc+objective=masked+encoder_from=source:cartpole-balance+encoder_mode=finetune"
    short, full = (dmc.source_run(task, variant, tmp_path) for task in ("cartpole-swingup", "dm_control/cartpole-swingup-v0"))
    assert short == full
    run_dir, args = full
    assert "action_repeat=8" in args and "env=dm_control/cartpole-balance-v0" in args and "objective=masked" in args
    assert run_dir.name == "source__cartpole-balance__dmc+objective=masked+action_repeat=8__20000x4000"


def test_dmc_transfer_table_and_plot_set_each_transfer_variant_beside_its_scratch_twin(tmp_path):
    from agents.analysis.bench import dmc
    from agents.training.pretrained import shipped_encoders

    task = "dm_control/cartpole-swingup-v0"
    scratch, frozen = "dmc+augment=shift", "dmc+augment=shift+encoder_from=pretrained:dmc+encoder_mode=frozen"
    groups = {(task, scratch, 100_000): [_dmc_piece(task, scratch, s, 400.0 + 10 * s, None) for s in (0, 1)],
              (task, frozen, 100_000): [_dmc_piece(task, frozen, s, 500.0, None) for s in (0, 1)],
              (task, "dmc+encoder_from=runs/x", 100_000): [_dmc_piece(task, "dmc+encoder_from=runs/x", 0, 100.0, None)]}
    for p in groups[task, frozen, 100_000]:
        p["probe_curve"] = [[0, 0.5 + p["seed"] / 10], [50_000, 0.7]]
    for p in groups[task, frozen, 100_000]:  # reaches scratch's final (405) at 50k: twice as fast
        p["curve"] = [[50_000, 1500.0, 410.0], [100_000, 3000.0, 500.0]]
    result = dmc.transfer_table(groups)
    by = {r[5]: dict(zip(result["columns"], r)) for r in result["rows"] if isinstance(r[7], int)}
    assert set(by) == {frozen, "dmc+encoder_from=runs/x"}  # scratch variants have no row of their own here
    # Every within-domain pair without pieces is listed, frozen and fine-tuned, with the commands that fill it.
    missing = [dict(zip(result["columns"], r)) for r in result["rows"] if not isinstance(r[7], int)]
    assert len(missing) == 2 * len(dmc.TRANSFER_PAIRS) + len(dmc.TRANSFER_LEVERS) + len(dmc.MULTI_DOMAIN_TARGETS)
    assert [dmc.short(t) for t in dmc.TASKS] == list(dmc.MULTI_DOMAIN_TARGETS[:6])  # every PlaNet task, then unseen
    multi = missing[-len(dmc.MULTI_DOMAIN_TARGETS):]
    assert [r["task"] for r in multi] == list(dmc.MULTI_DOMAIN_TARGETS)
    assert all(r["encoder from"] == "pretrained:dmc" and r["variant"] == dmc.MULTI_DOMAIN for r in multi)
    assert multi[-1]["seeds"] == f"none yet: `python scripts/bench_dmc.py tasks=hopper-stand variants={dmc.MULTI_DOMAIN}`"
    levers = {r["variant"]: r for r in missing[-len(dmc.TRANSFER_LEVERS) - len(multi):-len(multi)]}
    assert list(levers) == [variant for _, variant in dmc.TRANSFER_LEVERS]
    partial = levers["dmc+encoder_from=source:cartpole-balance+encoder_mode=finetune+encoder_frozen_layers=2"]
    assert partial["scratch twin's"] == "none yet: `python scripts/bench_dmc.py tasks=cartpole-swingup`"  # `dmc`
    unshifted = levers["dmc+augment=none+encoder_from=pretrained:cartpole-balance+encoder_mode=finetune"]
    assert unshifted["scratch twin's"] == ("none yet: `python scripts/bench_dmc.py tasks=cartpole-swingup "
                                           "variants=dmc+augment=none`")
    assert unshifted["encoder's objective"] == shipped_encoders()["cartpole-balance"]["objective"]
    masked = levers["dmc+objective=masked+encoder_from=source:cartpole-balance+encoder_mode=finetune"]
    assert masked["encoder's objective"] == masked["run's objective"] == "masked"
    balance = next(r for r in missing if r["encoder from"] == "source:cartpole-balance" and r["mode"] == "frozen")
    assert balance["seeds"] == ("none yet: `python scripts/bench_dmc.py tasks=cartpole-swingup "
                                "variants=dmc+encoder_from=source:cartpole-balance+encoder_mode=frozen`")
    assert balance["scratch twin's"] == "none yet: `python scripts/bench_dmc.py tasks=cartpole-swingup`"
    hard = next(r for r in missing if r["task"] == "reacher-hard" and r["mode"] == "finetune")
    assert hard["variant"] == "dmc+action_repeat=4+encoder_from=source:reacher-easy+encoder_mode=finetune"
    for variant in {r["variant"] for r in missing}:
        dmc.check_variant(variant)  # each command would run
    with_twin = dmc.transfer_table({**groups, (task, "dmc", 100_000): [_dmc_piece(task, "dmc", 0, 300.0, None)]})
    twins = {r[5]: r[10] for r in with_twin["rows"] if r[1] == "source:cartpole-balance"}
    assert [twins[v] for v in dmc.transfer_variants("cartpole-balance", "dmc")] == ["300 (1 seed)"] * 2
    assert twins[partial["variant"]] == "300 (1 seed)"  # partial fine-tuning's twin is `dmc` too
    assert twins[masked["variant"]].startswith("none yet")  # its twin is `dmc+objective=masked`
    row = by[frozen]
    assert (row["encoder from"], row["mode"], row["seeds"]) == ("pretrained:dmc", "frozen", 2)
    assert row["run's objective"] == "contrastive"  # the dmc preset's, as the variant names no other
    assert row["encoder's objective"] == shipped_encoders()["dmc"]["objective"]  # the shipped encoder's entry
    assert by["dmc+encoder_from=runs/x"]["encoder's objective"] == "–"  # no such run folder to read
    assert (balance["encoder's objective"], balance["run's objective"]) == ("contrastive", "contrastive")
    groups[task, frozen, 100_000][0]["config"] = {"objective": "masked"}  # the pieces' own configs win
    assert next(r for r in dmc.transfer_table(groups)["rows"] if r[5] == frozen)[4] == "masked"
    del groups[task, frozen, 100_000][0]["config"]
    assert row["probe R² before training"] == "0.55 ± 0.64" and row["scratch twin's"] == "405 ± 64 (2 seeds)"
    assert row["speed-up vs scratch"] == "2.00×"
    assert row["ΔAUC vs scratch"] == f"{455 - (202.5 + 405) / 2:+.0f}"
    lone = by["dmc+encoder_from=runs/x"]  # its twin `dmc` has no piece: nothing to compare with
    assert lone["scratch twin's"] == lone["speed-up vs scratch"] == "–"
    slow = dmc.transfer_table({(task, scratch, 100_000): groups[task, scratch, 100_000],
                               (task, frozen, 100_000): [_dmc_piece(task, frozen, 0, 300.0, None)]})["rows"][0]
    assert slow[11] == "< 1× (never reaches 405)"
    assert not any(r[2].startswith("dmc+encoder_from") for r in dmc.table(groups)["rows"] if "none yet" in str(r[4]))
    # The transfer plot: on the one task, each transfer variant after its scratch twin (where it has one).
    assert dmc.transfer_panels(groups) == {task: [(task, scratch, 100_000), (task, frozen, 100_000),
                                                  (task, "dmc+encoder_from=runs/x", 100_000)]}
    assert dmc.plot_transfer(groups, tmp_path / "transfer.png").stat().st_size > 0
    no_transfer = {(task, scratch, 100_000): groups[task, scratch, 100_000]}
    assert dmc.transfer_panels(no_transfer) == {} and dmc.plot_transfer(no_transfer, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_dmc_probe_table_reads_both_probes_of_each_piece_per_state_dim():
    from agents.analysis.bench import dmc

    task = "dm_control/cartpole-swingup-v0"
    old, new = _dmc_piece(task, "dmc", 0, 200.0, 210.0), _dmc_piece(task, "dmc", 1, 300.0, None)
    old["probe_curve"] = [[50_000, 0.1], [100_000, 0.2]]  # saved before the per-dim curves and the policy probe
    new["probe_curve"], new["probe_dims_curve"] = [[100_000, 0.4]], [[100_000, [0.8, 0.0]]]
    new["probe_method"] = "16 random-action episodes, 4-fold cross-validated"
    new["probe_policy_curve"], new["probe_policy_dims_curve"] = [[100_000, 0.6]], [[100_000, [0.9, 0.3]]]
    old["final_eval"]["probe_policy"] = {"r2": 0.5, "r2_per_dim": [0.7, 0.3], "episodes": 10}
    result = dmc.probe_table({(task, "dmc", 100_000): [old, new]})
    row = dict(zip(result["columns"], result["rows"][0]))
    assert row["probe R², random-action episodes, last evaluation (mean; per state dim)"] == "0.30"  # dims: 1 seed
    old["probe_dims_curve"] = [[50_000, [0.0, 0.0]], [100_000, [0.2, 0.2]]]
    row = dict(zip(result["columns"], dmc.probe_table({(task, "dmc", 100_000): [old, new]})["rows"][0]))
    assert row["probe R², random-action episodes, last evaluation (mean; per state dim)"] == "0.30 (0.50 / 0.10)"
    assert row["probe R², the agent's own episodes (final agent, 4-fold; per state dim)"] == "0.55 (0.80 / 0.30)"
    assert row["random-action probe"] == ("16 random-action episodes, 4-fold cross-validated; "
                                          "8 random-action episodes, 3/4 fit, 1/4 scored")
    assert dmc.probe_table({(task, "dmc", 100_000): [_dmc_piece(task, "dmc", 0, 1.0, None)]})["rows"][0][4] == "–"
    value = "value vs the return that followed, the final agent's own episodes (correlation / R² / bias)"
    assert row[value] == "–"  # no piece has the value check yet
    old["final_eval"]["value_policy"] = {"corr": 0.5, "r2": -0.2, "bias": 0.1}
    new["final_eval"] = {"value_policy": {"corr": 0.7, "r2": 0.4, "bias": -0.3}}
    row = dict(zip(result["columns"], dmc.probe_table({(task, "dmc", 100_000): [old, new]})["rows"][0]))
    assert row[value] == "0.60 / 0.10 / -0.10"
    reward = "reward head along the final agent's own steps (correlation / bias / bias on the best quarter)"
    assert row[reward] == "–"
    new["final_eval"]["reward_policy"] = {"corr": 0.8, "r2": 0.5, "bias": -0.2, "bias_top": -0.5}
    row = dict(zip(result["columns"], dmc.probe_table({(task, "dmc", 100_000): [old, new]})["rows"][0]))
    assert row[reward] == "0.80 / -0.20 / -0.50"
    acting = "final agent's return: noise-free / with training's exploration noise (same episodes)"
    assert row[acting] == "–"
    old["final_eval_training"] = {"episodes": 10, "return_mean": 500.0}  # old's noise-free final agent: 210
    result = dmc.probe_table({(task, "dmc", 100_000): [old, new]})
    row = dict(zip(result["columns"], result["rows"][0]))
    assert row[acting] == "210 / 500" and result["rows"][0][result["columns"].index(acting) + 1] == "1"


def test_dmc_speed_projects_a_run_from_the_medians_of_its_parts():
    from agents.analysis.bench import dmc

    cfg = {"steps": 100_000, "action_repeat": 8, "eval_every": 10_000, "eval_episodes": 10, "seed_updates": 200,
           "seed_steps": 1_000, "updates_per_step": 0.5}
    p = dmc.projection(cfg, env_seconds=0.015, act_seconds=0.005, update_seconds=0.2)
    assert p["agent_steps"] == 12_500 + 10 * 10 * 125  # training, then 10 evaluations of 10 episodes
    assert p["updates"] == 200 + (12_500 - 125) * 0.5  # the seed updates, then one per two agent steps
    assert p["minutes"] == pytest.approx((25_000 * 0.02 + p["updates"] * 0.2) / 60)
    assert p["acting_share"] + p["update_share"] == pytest.approx(1.0)
    # evaluations that plan for their envs side by side: each evaluation step costs its env's share
    batched = dmc.projection(cfg, env_seconds=0.015, act_seconds=0.005, update_seconds=0.2, eval_act_seconds=0.002)
    assert batched["minutes"] == pytest.approx((12_500 * 0.02 + 12_500 * 0.017 + p["updates"] * 0.2) / 60)


def test_bench_dmc_speed_measures_each_task_and_variant(tmp_path):
    pytest.importorskip("shimmy")
    out = tmp_path / "results"
    proc = run_script("bench_dmc", out, "speed=true", "tasks=cartpole-swingup", "seeds=0,1", f"variants={DMC_SMOKE}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "bench_dmc_speed.json").read_text())
    (case,) = result["raw"]["cases"]  # one per task and variant, whatever the seeds
    assert case["action_repeat"] == 8 and case["threads"] == 1
    assert min(case["env_seconds"], case["act_seconds"], case["eval_act_seconds"], case["update_seconds"]) > 0
    row = dict(zip(result["table"]["columns"], result["table"]["rows"][0]))
    assert row["evaluation act ms per env (envs side by side)"].endswith(f"({case['eval_envs']})")
    assert row["task"] == "cartpole-swingup" and row["projected minutes per run"] == f"{case['projection']['minutes']:.0f}"


def test_bench_probe_probes_a_pretrained_encoder_on_other_envs_beside_a_fresh_one(tmp_path):
    from worldmodel.actions import ActionSpec
    from worldmodel.config import Config
    from worldmodel.model import WorldModel

    encoder = tmp_path / "encoder.pt"
    WorldModel(Config.from_preset("debug", env="CartPole-v1"), ActionSpec("discrete", 2)).save_encoder(encoder)
    out = tmp_path / "results"
    proc = run_script("bench_probe", out, f"encoders={encoder}", "targets=Pendulum-v1", "episodes=2", "seeds=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads((out / "bench_probe_transfer.json").read_text())["table"]
    row = dict(zip(table["columns"], table["rows"][0]))
    assert (row["encoder"], row["target"], row["target among its envs"], row["seeds"]) == (str(encoder), "Pendulum-v1", "no", 1)
    assert row["encoder's objective"] == "–"  # a bare encoder file does not say what it learned by
    assert len(row["per state dim (transferred)"].split(" / ")) == 3  # cos θ, sin θ, θ̇
    piece = json.loads(next((out / "probe_transfer").glob("*.json")).read_text())
    assert piece["r2_transferred"] != piece["r2_fresh"] and piece["image_size"] == 64
    proc = run_script("bench_probe", out, "encoders=pretrained:nope", "targets=Pendulum-v1", "seeds=0")
    assert proc.returncode == 2 and "No shipped encoder named 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_probe_reads_out_the_state_with_each_variants_encoder_under_supervision(tmp_path):
    out = tmp_path / "results"
    args = ("env=Pendulum-v1", "readout=debug+augment=shift,debug+enc_act=relu", "episodes=4", "updates=3", "seeds=0")
    proc = run_script("bench_probe", out, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads((out / "bench_readout.json").read_text())["table"]
    rows = [dict(zip(table["columns"], row)) for row in table["rows"]]
    assert [(r["variant"], r["episodes"], r["updates"], r["seeds"]) for r in rows] == [
        ("debug+augment=shift", 4, 3, 1), ("debug+enc_act=relu", 4, 3, 1)]
    assert all(len(r["per state dim"].split(" / ")) == 3 for r in rows)  # cos θ, sin θ, θ̇
    pieces = [json.loads(p.read_text()) for p in sorted((out / "readout").glob("*.json"))]
    assert pieces[0]["r2_per_dim"] != pieces[1]["r2_per_dim"] and pieces[0]["fit_frames"] == 3 * 101
    for bad, message in (("debug+enc_act=gelu", "enc_act"), ("debug+enc_act", "preset+key=value")):
        proc = run_script("bench_probe", out, "env=Pendulum-v1", f"readout={bad}", "seeds=0")
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = run_script("bench_probe", out, "readout=debug", "encoders=pretrained:dmc", "targets=Pendulum-v1")
    assert proc.returncode == 2 and "two modes" in proc.stderr


def test_dmc_robustness_pieces_make_a_table_of_shares_of_the_clean_return(tmp_path, monkeypatch):
    from agents.analysis.bench import robustness

    monkeypatch.setattr(robustness, "PIECES", tmp_path / "robustness_dmc")
    monkeypatch.setattr(robustness.results, "save", lambda *a, **k: None)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)

    def report(clean: float, hard: float, probe_hard: float) -> dict:
        def cond(ret, r2):
            return {"return_mean": ret, "probe_r2": r2}
        return {"clean": cond(clean, 0.6), "perturbations": {"color_hard": cond(hard, probe_hard),
                                                             "color:3": cond(clean / 2, None)}}

    for seed, (clean, hard) in enumerate([(400.0, 100.0), (300.0, 150.0)]):
        key = robustness.piece_key(f"runs/bench_dmc/cartpole-swingup__dmc+appearance=conv__100000__{seed}",
                                   "dm_control/cartpole-swingup-v0")
        robustness.save_piece(key, {**report(clean, hard, -1.0 + seed), "seed": 12345})
    saved = json.loads((tmp_path / "robustness_dmc" / "cartpole-swingup__dmc+appearance=conv__0.json").read_text())
    assert saved["command"].startswith("OMP_NUM_THREADS=1 python ")  # the thread settings it ran with
    table = robustness.dmc_table()
    rows = {(r[0], r[1]): dict(zip(table["columns"], r)) for r in table["rows"]}
    row = rows["cartpole-swingup", "dmc+appearance=conv"]
    assert row["seeds"] == ("2; seeds 2 to run: `python scripts/bench_dmc.py tasks=cartpole-swingup "
                            "variants=dmc+appearance=conv seeds=2 robustness=true`")  # the protocol's third seed
    # every (task, variant) of the protocol is listed, a missing one with the commands that fill it
    assert set(rows) == {(t, v) for t in robustness.PROTOCOL[0] for v in robustness.PROTOCOL[1]}
    walker = rows["walker-walk", "dmc"]
    assert walker["seeds"] == "none yet: `python scripts/bench_dmc.py tasks=walker-walk variants=dmc seeds=0,1,2 robustness=true`"
    published = robustness.PUBLISHED_COLUMN
    assert published == "color_hard @500k frames, published (DrQ · SODA (conv) · SODA (overlay) · SVEA (conv) · SVEA (overlay))"
    assert walker["clean return [seed: return]"] == "–" and walker[published] == "520 · 697 · 692 · 760 · 749"
    assert row["clean return [seed: return]"] == "350 ± 636 [0: 400, 1: 300]"
    assert row["color_hard (share of clean)"] == "125 (38%)"  # (100/400 + 150/300) / 2
    assert row["color:3 (share of clean)"] == "175 (50%)"
    assert row["probe R² color_hard"] == "-0.50 ± 6.36"
    assert row["probe R² color_easy"] == row["color_easy (share of clean)"] == "–"  # DMC-GB's modes always listed
    assert saved["colour_modes"] == robustness.COLOUR_MODES_VERSION  # what its color_hard means
    assert row[published] == "586 · 831 · 805 · 837 · 832"
    # Colour modes first, DMC-GB's before ours, then the image-level ones.
    key = robustness.piece_key("runs/bench_dmc/walker-walk__dmc__100000__0", "dm_control/walker-walk-v0")
    robustness.save_piece(key, {"clean": {"return_mean": 100.0, "probe_r2": 0.5}, "seed": 1, "perturbations": {
        c: {"return_mean": 50.0, "probe_r2": 0.1} for c in ("noise:3", "color_all_hard", "color_easy", "color_hard")}})
    columns = robustness.dmc_table()["columns"]
    assert columns[4:9] == [f"{c} (share of clean)" for c in ("color_easy", "color_hard", "color_all_hard", "color:3", "noise:3")]
    assert columns[9:13] == ["probe R² clean", "probe R² color_easy", "probe R² color_hard", "probe R² color_all_hard"]
    # A piece with color_hard but no colour_modes was evaluated under the earlier, harder modes: refused.
    old = tmp_path / "robustness_dmc" / "walker-walk__dmc__0.json"
    old.write_text(json.dumps({k: v for k, v in json.loads(old.read_text()).items() if k != "colour_modes"}))
    with pytest.raises(ValueError, match="no colour_modes entry.*color_all_easy / color_all_hard"):
        robustness.dmc_table()
    with pytest.raises(ValueError, match="piece=true takes a DeepMind Control run of bench_dmc.py"):
        robustness.piece_key("runs/main_cpu_pendulum", "Pendulum-v1")


def test_bench_dmc_robustness_evaluates_each_finished_run_once(tmp_path, monkeypatch, capsys):
    from agents.analysis.bench import dmc, robustness

    monkeypatch.setattr(robustness, "PIECES", tmp_path / "robustness_dmc")
    calls = []
    monkeypatch.setattr(dmc.results, "run_script", lambda name, *args: calls.append((name, *args)))
    done = set()
    monkeypatch.setattr(dmc, "finished", lambda run_dir, steps: run_dir.name in done)
    task, variant, runs = "dm_control/cartpole-swingup-v0", "dmc+encoder_from=pretrained:dmc", tmp_path / "runs"
    name = dmc.run_name(task, variant, 100_000, 1)
    assert not dmc.fill_robustness(task, variant, 1, 100_000, 1, runs) and not calls  # no finished run to evaluate
    assert "does not hold the finished run" in capsys.readouterr().out
    done.add(name)
    assert dmc.fill_robustness(task, variant, 1, 100_000, 1, runs)
    assert calls == [("bench_robustness", f"run_dir={runs / name}", "piece=true")]
    # what bench_robustness.py would save there (its folder-name key), and then nothing runs again
    key = robustness.piece_key(runs / name, task)
    robustness.piece_path(*key).parent.mkdir(parents=True)
    robustness.piece_path(*key).write_text("{}")
    assert not dmc.fill_robustness(task, variant, 1, 100_000, 1, runs) and len(calls) == 1


def test_every_saved_dmc_piece_is_labelled_by_what_it_ran():
    """A piece's variant, resolved with today's presets and the task's protocol, gives the config it
    trained with: when a preset default changes (the `dmc` preset's augment=shift on 2026-12-06), the
    pieces trained before must be relabelled (`dmc` -> `dmc+augment=none`) or the table would mislabel them."""
    from agents.analysis.bench import dmc
    from worldmodel.config import Config

    pieces = [json.loads(p.read_text()) for p in sorted((ROOT / "docs" / "results" / "dmc").glob("*.json"))]
    assert pieces
    wrong = {f"{p['task']} {p['variant']} seed {p['seed']}": dmc.label_mismatch(p) for p in pieces}
    assert not {name: diff for name, diff in wrong.items() if diff}
    # What a stale label looks like: a piece trained without augmentation, still labelled `dmc`.
    stale = Config.from_preset("dmc", env="dm_control/cartpole-swingup-v0", action_repeat=8, augment="none")
    piece = {"task": "dm_control/cartpole-swingup-v0", "variant": "dmc", "config": stale.to_dict()}
    assert dmc.label_mismatch(piece) == {"augment": ("none", "shift")}
    assert dmc.label_mismatch({**piece, "variant": "dmc+augment=none"}) == {}


def test_relabel_gives_each_stale_piece_the_label_of_what_it_ran_and_its_robustness_piece_follows(tmp_path,
                                                                                                 monkeypatch):
    from agents.analysis.bench import dmc, robustness
    from agents.analysis.results import write_piece
    from agents.training.assembly import resolve_config

    monkeypatch.setattr(dmc, "PIECES", tmp_path / "dmc")
    monkeypatch.setattr(robustness, "PIECES", tmp_path / "robustness_dmc")
    cartpole, reacher, cheetah = ("dm_control/cartpole-swingup-v0", "dm_control/reacher-easy-v0",
                                  "dm_control/cheetah-run-v0")

    def save(task, variant, seed, *ran):  # a piece labelled `variant` that trained with the config `ran` gives
        config = resolve_config([f"env={task}", "preset=dmc", *ran]).to_dict()
        piece = {"task": task, "variant": variant, "seed": seed, "steps": 100_000, "config": config,
                 "command": f"python scripts/train.py env={task} preset=dmc seed={seed} {' '.join(ran)}".strip()}
        write_piece(dmc.piece_path(task, variant, 100_000, seed), piece)

    save(cheetah, "dmc", 0, "updates_per_step=1")  # stale: the preset gives 0.5 on cheetah-run
    save(cheetah, "dmc", 1)  # names what it ran: stays
    save(cartpole, "dmc+updates_per_step=1", 0, "enc_act=silu")  # stale, and its override is the preset's own now
    # names what it ran, but the override is what the preset now sets for the task: the plain label takes it,
    # and a label that needs its other overrides keeps them
    save(reacher, "dmc+updates_per_step=1", 0, "updates_per_step=1")
    save(reacher, "dmc+updates_per_step=1+value_of=policy+q_steps=3", 0, "updates_per_step=1", "value_of=policy",
         "q_steps=3")
    write_piece(robustness.PIECES / "cheetah-run__dmc__0.json", {"task": "cheetah-run", "variant": "dmc", "seed": 0})
    assert dmc.relabelled_variant(json.loads(dmc.piece_path(cheetah, "dmc", 100_000, 1).read_text())) == "dmc"

    renamed = dmc.relabel("a test", "2026-12-07")
    assert sorted(renamed) == [("cartpole-swingup__dmc+updates_per_step=1__100000__0.json",
                                "cartpole-swingup__dmc+enc_act=silu__100000__0.json"),
                               ("cheetah-run__dmc__0.json", "cheetah-run__dmc+updates_per_step=1__0.json"),
                               ("cheetah-run__dmc__100000__0.json", "cheetah-run__dmc+updates_per_step=1__100000__0.json"),
                               ("reacher-easy__dmc+updates_per_step=1+value_of=policy+q_steps=3__100000__0.json",
                                "reacher-easy__dmc+value_of=policy+q_steps=3__100000__0.json"),
                               ("reacher-easy__dmc+updates_per_step=1__100000__0.json",
                                "reacher-easy__dmc__100000__0.json")]
    piece = json.loads(dmc.piece_path(cheetah, "dmc+updates_per_step=1", 100_000, 0).read_text())
    assert piece["relabelled"] == [{"from": "dmc", "on": "2026-12-07", "why": "a test"}]
    assert piece["command"].count("updates_per_step=1") == 1 and dmc.label_mismatch(piece) == {}
    cartpole_piece = json.loads(dmc.piece_path(cartpole, "dmc+enc_act=silu", 100_000, 0).read_text())
    assert cartpole_piece["command"].endswith("enc_act=silu") and dmc.label_mismatch(cartpole_piece) == {}
    assert dmc.label_mismatch(json.loads(dmc.piece_path(reacher, "dmc", 100_000, 0).read_text())) == {}
    moved = json.loads((robustness.PIECES / "cheetah-run__dmc+updates_per_step=1__0.json").read_text())
    assert moved["variant"] == "dmc+updates_per_step=1" and moved["relabelled"][0]["from"] == "dmc"
    assert dmc.piece_path(cheetah, "dmc", 100_000, 1).is_file() and dmc.relabel("again", "2026-12-08") == []

    save(cheetah, "dmc", 2, "updates_per_step=1")  # would land on a name another piece holds: nothing moves
    save(cheetah, "dmc+updates_per_step=1", 2, "updates_per_step=1")
    before = sorted(p.name for p in dmc.PIECES.glob("*.json"))
    with pytest.raises(ValueError, match="two pieces under one name"):
        dmc.relabel("a clash", "2026-12-08")
    assert sorted(p.name for p in dmc.PIECES.glob("*.json")) == before


def test_bench_robustness_table_rebuilds_the_dmc_table_from_saved_pieces(tmp_path):
    saved = sorted((ROOT / "docs" / "results" / "robustness_dmc").glob("*.json"))[0]
    (tmp_path / "robustness_dmc").mkdir()
    shutil.copy(saved, tmp_path / "robustness_dmc" / saved.name)
    proc = run_script("bench_robustness", tmp_path, "table=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = json.loads((tmp_path / "bench_robustness_dmc.json").read_text())
    assert table["command"] == "python scripts/bench_robustness.py table=true"
    assert len([r for r in table["table"]["rows"] if not str(r[2]).startswith("none yet")]) == 1


def test_dmcgb_colors_reads_colour_sets_with_weights_only_and_refuses_a_corrupt_file(tmp_path):
    """scripts/dmcgb_colors.py on sets saved as DMC-GB saves them (a list of dicts of float64 arrays),
    here our own color_hard draws: their statistics come back; a corrupt file is refused by name."""
    pytest.importorskip("dm_control")
    import numpy as np
    import torch

    from envs.dmc_colors import draw_colors

    defaults = {k: np.array(v) for k, v in {"grid_rgb1": (.1, .2, .3), "grid_rgb2": (.2, .3, .4), "grid_markrgb": (.8, .8, .8),
                                            "self_rgb": (.7, .5, .3), "skybox_rgb": (.4, .6, .8), "skybox_rgb2": (0, 0, 0),
                                            "skybox_markrgb": (1, 1, 1)}.items()}
    data = tmp_path / "data"
    data.mkdir()
    for mode in ("color_easy", "color_hard"):
        sets = [{k: v for k, v in draw_colors(mode, 1000 + s, defaults).items()
                 if k in ("grid_rgb1", "grid_rgb2", "self_rgb", "skybox_rgb")} for s in range(100)]
        torch.save(sets, data / f"{mode}.pt")
    proc = run_script("dmcgb_colors", tmp_path, f"dir={data}", "draws=200")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "dmcgb_colors.json").read_text())
    for mode, sd in (("color_easy", 0.1), ("color_hard", 0.2)):
        shipped = report[mode]["dmcgb"]
        assert shipped["sets"] == 100 and shipped["changed"] == ["grid_rgb1", "grid_rgb2", "self_rgb", "skybox_rgb"]
        assert abs(shipped["sd"] / sd - 1) < 0.2 and report[mode]["ours"]["sets"] == 200
    (data / "color_hard.pt").write_bytes(b"not a pickle")
    proc = run_script("dmcgb_colors", tmp_path, f"dir={data}")
    assert proc.returncode == 2 and "color_hard.pt is not a list of colour sets" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    proc = run_script("dmcgb_colors", tmp_path, f"dir={tmp_path / 'nowhere'}")
    assert proc.returncode == 2 and "pass dir=" in proc.stderr
