"""Physics-level colour shifts (DMC-GB's color_easy / color_hard, our color_all_easy / color_all_hard) of
`envs.dmc_colors`."""

import subprocess
import sys

import numpy as np
import pytest

from envs import (
    COLOR_MODES,
    ColorModeError,
    PerturbationError,
    make_env,
    parse_perturbation,
    perturb_frames,
)
from envs.dmc_colors import ALL_EASY_SPREAD, DMCGB_KEYS, DMCGB_SD, colour_set_stats, draw_colors

DEFAULTS = {key: np.full(3, 0.5) for key in ("grid_rgb1", "grid_rgb2", "grid_markrgb", "self_rgb",
                                              "skybox_rgb", "skybox_rgb2", "skybox_markrgb")}
SUITE = {**DEFAULTS, "grid_rgb1": np.array([0.1, 0.2, 0.3]), "grid_rgb2": np.array([0.2, 0.3, 0.4]),
         "self_rgb": np.array([0.7, 0.5, 0.3]), "skybox_rgb": np.array([0.4, 0.6, 0.8])}
"""The suite's colours where DMC-GB changes them (common/materials.xml, common/skybox.xml)."""


def test_draws_are_a_function_of_the_seed_within_their_range():
    for mode in COLOR_MODES:
        a, b, c = (draw_colors(mode, s, DEFAULTS) for s in (3, 3, 4))
        assert a.keys() == DEFAULTS.keys()
        assert all(np.array_equal(a[k], b[k]) for k in a)
        assert any(not np.array_equal(a[k], c[k]) for k in a)
    hard = np.stack([v for s in range(50) for v in draw_colors("color_all_hard", s, DEFAULTS).values()])
    easy = np.stack([v for s in range(50) for v in draw_colors("color_all_easy", s, DEFAULTS).values()])
    assert hard.min() >= 0 and hard.max() <= 1 and hard.std() > 0.25      # the whole cube
    assert np.abs(easy - 0.5).max() <= ALL_EASY_SPREAD and easy.std() > 0.05  # near the defaults


def test_the_all_colour_modes_draw_exactly_what_color_easy_and_color_hard_drew_before_2026_12_07():
    """The robustness pieces relabelled to color_all_easy / color_all_hard stay reproducible: pinned draws."""
    assert np.round(draw_colors("color_all_easy", 0, DEFAULTS)["grid_rgb1"], 6).tolist() == [0.444288, 0.650666, 0.622877]
    assert np.round(draw_colors("color_all_easy", 0, DEFAULTS)["grid_rgb2"], 6).tolist() == [0.365889, 0.601528, 0.478317]
    assert np.round(draw_colors("color_all_hard", 0, DEFAULTS)["grid_rgb1"], 6).tolist() == [0.36072, 0.876665, 0.807192]
    assert np.round(draw_colors("color_all_hard", 0, DEFAULTS)["grid_rgb2"], 6).tolist() == [0.164723, 0.75382, 0.445792]


@pytest.mark.parametrize("mode", ["color_easy", "color_hard"])
def test_dmcgb_modes_draw_as_its_shipped_sets_do(mode):
    """Only the floor's first checker colour, the body and the sky's first colour are drawn (normal around
    the default, DMC-GB's sd, clipped); the second checker colour keeps its offset; the rest stay."""
    draws = [draw_colors(mode, s, SUITE) for s in range(2000)]
    for key in set(SUITE) - {*DMCGB_KEYS, "grid_rgb2"}:
        assert all(np.array_equal(d[key], SUITE[key]) for d in draws), key
    for key in DMCGB_KEYS:
        values = np.stack([d[key] for d in draws])
        assert values.min() >= 0 and values.max() <= 1 and (values != SUITE[key]).all()
    for key, channel in (("self_rgb", 1), ("skybox_rgb", 0), ("skybox_rgb", 1)):  # defaults 0.4-0.6: hardly clipped
        moved = np.stack([d[key][channel] for d in draws]) - SUITE[key][channel]
        assert abs(moved.mean()) < 0.02 and abs(moved.std() / DMCGB_SD[mode] - 1) < 0.1
    rgb1, rgb2 = (np.stack([d[k] for d in draws]) for k in ("grid_rgb1", "grid_rgb2"))
    assert np.allclose(rgb2, np.clip(rgb1 + 0.1, 0, 1))
    body = np.stack([d["self_rgb"] for d in draws]) - SUITE["self_rgb"]
    assert np.abs(np.corrcoef(body.T) - np.eye(3)).max() < 0.1  # channels drawn independently
    # The statistics scripts/dmcgb_colors.py reads off DMC-GB's files, here of our draws: what we fitted.
    stats = colour_set_stats(draws, SUITE)
    assert stats["changed"] == ["grid_rgb1", "grid_rgb2", "self_rgb", "skybox_rgb"]
    assert abs(stats["sd"] / DMCGB_SD[mode] - 1) < 0.15 and abs(stats["kurtosis"] - 3) < 0.3
    assert stats["largest_correlation"] < 0.1 and stats["grid_offset"][1] == pytest.approx(0.1)
    assert colour_set_stats([SUITE] * 3, SUITE)["changed"] == []  # nothing moved


def test_specs_and_refusals():
    assert parse_perturbation("color_hard") == ("color_hard", 0)
    with pytest.raises(PerturbationError, match="has no severity"):
        parse_perturbation("color_hard:3")
    with pytest.raises(PerturbationError, match="color_easy"):
        parse_perturbation("color_eazy:1")
    with pytest.raises(PerturbationError, match="record the episode again"):
        perturb_frames(np.zeros((2, 3, 8, 8), np.uint8), "color_hard", 0, seed=0)
    with pytest.raises(ColorModeError, match="not one.*color:3"):
        make_env("Pendulum-v1", perturb="color_hard")


CHECK = """
import numpy as np, envs
def run(perturb, seed, steps=6):
    env = envs.make_env("dm_control/cartpole-swingup-v0", image_size=48, perturb=perturb)
    obs, info = env.reset(seed=seed)
    frames, states = [obs], [info["state"]]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(np.full(1, 0.7, np.float32))
        frames.append(obs); states.append(info["state"])
    env.close()
    return np.stack(frames).astype(np.float64), np.stack(states)
clean, s_clean = run(None, 3)
for mode in envs.COLOR_MODES:
    a, s_a = run(mode, 3)
    b, _ = run(mode, 3)
    c, _ = run(mode, 4)
    assert np.array_equal(a, b), "not deterministic under the seed"
    assert np.allclose(s_a, s_clean), "colours changed the dynamics"
    print(mode, np.abs(a - clean).mean(), np.abs(a - c).mean())
"""


def test_colours_change_the_rendered_scene_deterministically_and_leave_the_dynamics():
    pytest.importorskip("shimmy")
    pytest.importorskip("dm_control")
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    diffs = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in proc.stdout.splitlines()}
    assert set(diffs) == set(COLOR_MODES)
    # mean absolute pixel change vs clean and between two episode seeds, on a 0..255 scale
    assert diffs["color_all_hard"][0] > 20 and diffs["color_all_hard"][1] > 20
    assert diffs["color_all_easy"][0] > 3 and diffs["color_all_easy"][1] > 3
    assert diffs["color_hard"][0] > 5 and diffs["color_hard"][1] > 5
    assert diffs["color_easy"][0] > 2 and diffs["color_easy"][1] > 2
    assert diffs["color_all_hard"][0] > diffs["color_hard"][0] > diffs["color_easy"][0]
