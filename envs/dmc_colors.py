"""DMC-GB-style colour shifts at the physics level: the simulated bodies, floor and sky get new
colours at every reset, so the scene is re-rendered in them (shading, shadows and all), not recoloured
afterwards as `envs.perturb`'s image-level `color` does.

    env = make_env("dm_control/walker-walk-v0", perturb="color_hard")
    obs, info = env.reset(seed=3)          # the same seed gives the same colours

Two pairs of modes:

- `color_easy`, `color_hard`: DMC-GB's own. DMC-GB samples 100 colour sets once and ships them as
  `color_easy.pt` / `color_hard.pt` (in its repository, `src/env/data/`). We do not ship or load those
  files; we read them once (2026-12-07, from a copy of nicklashansen/dmcontrol-generalization-benchmark)
  to learn how they were drawn, and draw the same way: four colours change, the floor's first checker
  colour (`grid` rgb1), the agent's `self` material and the sky's first gradient colour (`skybox` rgb1),
  each channel moved from its default by a normal draw, sd 0.1 (easy) or 0.2 (hard), clipped to
  [0, 1]; the floor's second checker colour keeps its default offset from the first (+0.1 per channel
  in the suite). What their files show: per-channel deviations with sd 0.099 (easy) and 0.181 (hard,
  among the values the clipping left alone: a clipped sd-0.2 normal), kurtosis 3.05 and 3.02 (a
  normal's 3), channels and colours uncorrelated (|r| ≤ 0.24 over 100 sets, what chance gives), grid
  rgb2 − rgb1 exactly 0.1 in all 200 sets, and the checker's marks, the sky's second colour and its stars untouched. Our colours are drawn
  per episode seed, not picked from 100 fixed sets. `scripts/dmcgb_colors.py` measures theirs and ours.
- `color_all_easy`, `color_all_hard`: ours, harder, and what `color_easy` / `color_hard` meant here
  before 2026-12-07: all seven colours (the checker's two and its marks, `self`, the sky's two and its
  stars) move, by U(-0.2, 0.2) per channel (easy) or anywhere in [0, 1]^3 (hard), so the sky's two
  colours and the floor's two part ways, which DMC-GB's never do.

The modified materials and skybox are written into the domain's XML assets and the physics is
reloaded from them before the episode resets, which is what DMC-GB does too.

Determinism: the colours are a pure function of the episode seed. `reset(seed=s)` draws them from
`default_rng([s, salt])` and reseeds the wrapper's generator with `s`; a reset without a seed takes the
next episode seed from that generator (the `Perturb` wrapper's convention). Colours leave the dynamics
alone: the same seed and actions give the same states as the clean env (tested).
"""

from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET

import gymnasium as gym
import numpy as np

from envs.errors import EnvError

MODES = ("color_easy", "color_hard", "color_all_easy", "color_all_hard")
"""Physics-level colour modes, usable as `perturb=` specs without a severity: DMC-GB's two, then ours."""

DMCGB_SD = {"color_easy": 0.1, "color_hard": 0.2}
"""DMC-GB's per-channel spread (a normal's sd) around each default colour, as its shipped sets show."""
DMCGB_KEYS = ("grid_rgb1", "self_rgb", "skybox_rgb")
"""The colours DMC-GB draws; `grid_rgb2` follows `grid_rgb1` at its default offset, the rest keep theirs."""
ALL_EASY_SPREAD = 0.2
"""`color_all_easy`: each channel of every colour moves by U(-ALL_EASY_SPREAD, ALL_EASY_SPREAD)."""
_SALT = 17
# (asset file, XML tag, element name, attribute) of each colour DMC-GB changes.
_TARGETS = {
    "grid_rgb1": ("./common/materials.xml", "texture", "grid", "rgb1"),
    "grid_rgb2": ("./common/materials.xml", "texture", "grid", "rgb2"),
    "grid_markrgb": ("./common/materials.xml", "texture", "grid", "markrgb"),
    "self_rgb": ("./common/materials.xml", "material", "self", "rgba"),
    "skybox_rgb": ("./common/skybox.xml", "texture", "skybox", "rgb1"),
    "skybox_rgb2": ("./common/skybox.xml", "texture", "skybox", "rgb2"),
    "skybox_markrgb": ("./common/skybox.xml", "texture", "skybox", "markrgb"),
}


class ColorModeError(EnvError):
    """A physics-level colour mode asked of an env it cannot apply to."""


class EpisodeSeeds:
    """The perturbation wrappers' episode seeds: `reset(seed=s)` uses `s` and reseeds the generator with
    it; a reset without a seed draws the next episode seed from that generator."""

    def __init__(self):
        self._rng = np.random.default_rng()

    def next(self, seed: int | None) -> int:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            return int(seed)
        return int(self._rng.integers(2**31))


def _element(root: ET.Element, tag: str, name: str) -> ET.Element:
    for el in root.iter(tag):
        if el.get("name") == name:
            return el
    raise ColorModeError(f"the DeepMind Control assets have no <{tag} name={name!r}>: this dm_control version "
                         "lays out its common assets differently; colour modes need the suite's common/*.xml.")


def default_colors(assets: dict) -> dict[str, np.ndarray]:
    """The suite's own colours, `{key: (3,) float}` for every key of `_TARGETS`."""
    out = {}
    for key, (file, tag, name, attr) in _TARGETS.items():
        el = _element(ET.fromstring(assets[file]), tag, name)
        out[key] = np.array([float(v) for v in el.get(attr).split()[:3]])
    return out


def draw_colors(mode: str, seed: int, defaults: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The colours of the episode with seed `seed` under `mode`, `{key: (3,) float in [0, 1]}`."""
    rng = np.random.default_rng([int(seed), _SALT])
    if mode in DMCGB_SD:
        colors = {key: np.asarray(defaults[key], dtype=float) for key in _TARGETS}
        for key in DMCGB_KEYS:
            colors[key] = np.clip(defaults[key] + rng.normal(0.0, DMCGB_SD[mode], 3), 0.0, 1.0)
        colors["grid_rgb2"] = np.clip(colors["grid_rgb1"] + defaults["grid_rgb2"] - defaults["grid_rgb1"], 0.0, 1.0)
        return colors
    if mode == "color_all_hard":
        return {key: rng.uniform(0.0, 1.0, 3) for key in _TARGETS}
    if mode == "color_all_easy":
        return {key: np.clip(defaults[key] + rng.uniform(-ALL_EASY_SPREAD, ALL_EASY_SPREAD, 3), 0.0, 1.0) for key in _TARGETS}
    raise ColorModeError(f"Unknown colour mode {mode!r}: choose one of {', '.join(MODES)}.")


def colour_set_stats(sets: list[dict], defaults: dict[str, np.ndarray]) -> dict:
    """How a list of colour sets (`[{key: (3,) float}]`, DMC-GB's shipped `color_*.pt` or our own draws)
    moves the colours from `defaults`: which keys it moves; over the channels of those drawn (all moved
    keys but `grid_rgb2`, which DMC-GB derives from `grid_rgb1`: its offset is reported instead) the mean
    and sd of the move, its kurtosis (a normal's is 3) and the largest move, leaving out the channels the
    [0, 1] clipping reached (they would shrink the spread; `clipped` is their share); the largest
    |correlation| between two drawn channels of one set; and the range of `grid_rgb2 - grid_rgb1`."""
    keys = [key for key in _TARGETS if key in sets[0]]
    values = {key: np.stack([np.asarray(s[key], dtype=float)[:3] for s in sets]) for key in keys}
    moves = {key: values[key] - np.asarray(defaults[key], dtype=float)[:3] for key in keys}
    changed = [key for key in keys if np.abs(moves[key]).max() > 1e-6]
    drawn = [key for key in changed if key != "grid_rgb2"]
    if not drawn:
        return {"sets": len(sets), "keys": keys, "changed": changed}
    inside = {key: (values[key] > 0) & (values[key] < 1) for key in drawn}
    free = np.concatenate([moves[key][inside[key]] for key in drawn])
    mean, sd = float(free.mean()), float(free.std())
    columns = np.concatenate([moves[key] for key in drawn], axis=1)
    corr = np.corrcoef(columns.T)
    out = {"sets": len(sets), "keys": keys, "changed": changed, "mean": mean, "sd": sd,
           "kurtosis": float((((free - mean) / sd) ** 4).mean()), "largest_move": float(np.abs(free).max()),
           "clipped": float(1 - np.mean([inside[key].mean() for key in drawn])),
           "largest_correlation": float(np.abs(corr - np.eye(len(corr))).max())}
    if {"grid_rgb1", "grid_rgb2"} <= set(keys):
        offset = values["grid_rgb2"] - values["grid_rgb1"]
        out["grid_offset"] = [float(offset.min()), float(offset.max())]
    return out


def recolored_assets(assets: dict, colors: dict[str, np.ndarray]) -> dict:
    """A copy of the suite's `assets` (path -> bytes) with `colors` written into materials and skybox."""
    out = dict(assets)
    roots = {file: ET.fromstring(assets[file]) for file in {t[0] for t in _TARGETS.values()}}
    for key, rgb in colors.items():
        file, tag, name, attr = _TARGETS[key]
        value = " ".join(f"{c:.4f}" for c in rgb) + (" 1" if attr == "rgba" else "")
        _element(roots[file], tag, name).set(attr, value)
    for file, root in roots.items():
        out[file] = ET.tostring(root)
    return out


class DmcColors(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Re-colour a DeepMind Control env (shimmy's `dm_control/<domain>-<task>-v0`) at every reset.

    Wrap the base env, inside action repeat and the pixel wrapper, so every rendered frame shows the
    episode's colours. Observation and action spaces are unchanged.
    """

    def __init__(self, env: gym.Env, mode: str, domain: str):
        gym.utils.RecordConstructorArgs.__init__(self, mode=mode, domain=domain)
        gym.Wrapper.__init__(self, env)
        if mode not in MODES:
            raise ColorModeError(f"Unknown colour mode {mode!r}: choose one of {', '.join(MODES)}.")
        dm_env = getattr(env.unwrapped, "_env", None)
        if dm_env is None or not hasattr(dm_env, "physics"):
            raise ColorModeError(f"perturb={mode} recolours DeepMind Control physics; {env.spec.id if env.spec else env} "
                                 "is not a dm_control env. Use an image-level perturbation (color:3) instead.")
        try:
            module = importlib.import_module(f"dm_control.suite.{domain}")
            self._xml, assets = module.get_model_and_assets()
        except (ImportError, AttributeError, TypeError) as e:
            raise ColorModeError(f"perturb={mode} needs the model of dm_control domain {domain!r} "
                                 f"(dm_control.suite.{domain}.get_model_and_assets()): {e}.") from None
        self._assets = dict(assets)
        self.mode, self.domain = mode, domain
        self.defaults = default_colors(self._assets)
        self.colors: dict[str, np.ndarray] = {}
        self._physics = dm_env.physics
        self._seeds = EpisodeSeeds()
        self.episode_seed = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.episode_seed = self._seeds.next(seed)
        self.colors = draw_colors(self.mode, self.episode_seed, self.defaults)
        self._physics.reload_from_xml_string(self._xml, assets=recolored_assets(self._assets, self.colors))
        return self.env.reset(seed=seed, options=options)
