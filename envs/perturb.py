"""Out-of-distribution visual perturbations of pixel observations, for evaluating robustness.

    env = make_env("Pendulum-v1", perturb="color:3")      # Perturb is the outermost wrapper
    name, severity = parse_perturbation("noise:2")         # ("noise", 2)
    shifted = perturb_frames(frames, "distractors", 5, seed=7)   # (L, 3, H, W) uint8, as the env would show

Each perturbation takes a severity 1..5 (u = severity / 5 scales it linearly):

- `color`: the hue rotates by 36° x severity (180° at 5) about the grey axis, in a direction drawn
  per episode, then each channel is scaled by 1 - 0.08 x severity x r_c (r_c ~ U(0, 1) per episode),
  which tints grey and white backgrounds too.
- `brightness`: the frame is darkened (x (1 - a)) or brightened (towards white, 255 - (255 - x)(1 - a)),
  with a = 0.15 x severity x j; the direction and j ~ U(0.8, 1) are drawn per episode. Both remove
  the fraction a of the contrast (up to 75% at severity 5).
- `noise`: background noise. Pixels within 32 (per channel) of the background colour (the median of
  the frame's border) get Gaussian noise of std 16 x severity per channel, fresh every step; the
  object itself is left untouched, so it stays visible and only the background gets harder.
- `distractors`: `severity` coloured discs or squares of radius (0.06 + 0.01 x severity) x side drawn
  over the frame, each gliding at a fixed speed (3% of the side per step) and bouncing off the edges.
  They may occlude the object.

Physics-level colour shifts (`color_easy`, `color_hard`, `color_all_easy`, `color_all_hard`; DeepMind Control
only, no severity) live in
`envs.dmc_colors`: `make_env(..., perturb="color_hard")` recolours the simulated scene at each reset
instead of the rendered image. `parse_perturbation` accepts them; `perturb_frames` cannot apply them.

Determinism: a perturbed frame is a pure function of (frame, name, severity, episode seed, step
index). `Perturb.reset(seed=s)` uses `s` as the episode seed and reseeds the wrapper's generator with
it; a reset without a seed draws the next episode seed from that generator. So the same seed gives
the same perturbed episode, and `perturb_frames(frames, ..., seed=s)` reproduces exactly what the
wrapper shows after `reset(seed=s)` (tested), which is how recorded episodes are perturbed.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np
from einops import rearrange

from envs.dmc_colors import MODES as COLOR_MODES
from envs.dmc_colors import EpisodeSeeds
from envs.errors import EnvError

SEVERITIES = (1, 2, 3, 4, 5)
_MAX = SEVERITIES[-1]
_BACKGROUND_TOLERANCE = 32.0
_SPEED = 0.03


class PerturbationError(EnvError):
    """A perturbation spec is not `name:severity` with a known name and a severity in 1..5."""


# A perturbation: frames `(L, 3, H, W)` float32 in [0, 255], severity, episode seed, step index of
# each frame `(L,)` int -> perturbed frames `(L, 3, H, W)` float32 (clipped and rounded afterwards).
Perturbation = Callable[[np.ndarray, int, int, np.ndarray], np.ndarray]


def _episode_rng(seed: int, salt: int, step: int | None = None) -> np.random.Generator:
    """Draws that depend on the episode (and step) only; parameters are drawn at full strength and
    scaled by severity afterwards, so severities of one episode differ in strength, not in kind."""
    return np.random.default_rng([seed, salt] if step is None else [seed, salt, step])


def _hue_matrix(degrees: float) -> np.ndarray:
    """`(3, 3)` rotation of RGB about the grey axis (Rodrigues' formula): greys stay put."""
    a = np.deg2rad(degrees)
    cross = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=np.float64) / np.sqrt(3)
    return np.cos(a) * np.eye(3) + np.sin(a) * cross + (1 - np.cos(a)) * np.full((3, 3), 1 / 3)


def _color(x: np.ndarray, severity: int, seed: int, steps: np.ndarray) -> np.ndarray:
    rng = _episode_rng(seed, 1)
    direction = rng.choice([-1.0, 1.0])
    r = rng.random(3)
    gains = 1.0 - 0.08 * severity * r
    mix = (gains[:, None] * _hue_matrix(direction * 36.0 * severity)).astype(np.float32)
    return np.einsum("ij,ljhw->lihw", mix, x)


def _brightness(x: np.ndarray, severity: int, seed: int, steps: np.ndarray) -> np.ndarray:
    rng = _episode_rng(seed, 2)
    darken, jitter = rng.random() < 0.5, rng.uniform(0.8, 1.0)
    keep = 1.0 - 0.15 * severity * jitter
    return x * keep if darken else 255.0 - (255.0 - x) * keep


def _background(x: np.ndarray) -> np.ndarray:
    """Per-frame background colour, the median of the border pixels: `(L, 3, H, W)` -> `(L, 3, 1, 1)`."""
    border = np.concatenate([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], axis=-1)
    return np.median(border, axis=-1)[..., None, None]


def _noise(x: np.ndarray, severity: int, seed: int, steps: np.ndarray) -> np.ndarray:
    near = (np.abs(x - _background(x)).max(axis=1, keepdims=True) <= _BACKGROUND_TOLERANCE)  # (L, 1, H, W)
    noise = np.stack([_episode_rng(seed, 3, int(t)).standard_normal(x.shape[1:], dtype=np.float32) for t in steps])
    return x + near * noise * (16.0 * severity)


def _distractors(x: np.ndarray, severity: int, seed: int, steps: np.ndarray) -> np.ndarray:
    _, _, h, w = x.shape
    rng = _episode_rng(seed, 4)
    start, angle, hue, square = rng.random((_MAX, 2)), rng.random(_MAX) * 2 * np.pi, rng.random(_MAX), rng.random(_MAX) < 0.5
    start, angle, hue, square = start[:severity], angle[:severity], hue[:severity], square[:severity]
    colours = 127.5 + 127.5 * np.cos(2 * np.pi * (hue[:, None] + np.array([0, 1, 2]) / 3))  # (n, 3) saturated
    radius = (0.06 + 0.01 * severity) * min(h, w)
    # Centres bounce between the edges: a triangle wave of a straight glide, in closed form of the step.
    lo = np.array([radius, radius])
    span = np.maximum(np.array([h, w]) - 2 * radius, 1e-6)
    velocity = _SPEED * min(h, w) * np.stack([np.sin(angle), np.cos(angle)], axis=-1)  # (n, 2) pixels / step
    travel = start[None] * span + velocity[None] * steps[:, None, None]  # (L, n, 2)
    folded = np.mod(travel, 2 * span)
    centre = lo + span - np.abs(folded - span)  # (L, n, 2) as (y, x)
    yy = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xx = np.arange(w, dtype=np.float32)[None, :] + 0.5
    dy = np.abs(yy - centre[..., 0, None, None])  # (L, n, H, W) after broadcasting with dx
    dx = np.abs(xx - centre[..., 1, None, None])
    disc = dy**2 + dx**2 <= radius**2
    box = np.maximum(dy, dx) <= radius * np.sqrt(np.pi) / 2  # same area as the disc
    inside = np.where(square[None, :, None, None], box, disc)
    out = x.copy()
    for j in range(len(colours)):
        out = np.where(inside[:, j, None], colours[j, :, None, None].astype(np.float32), out)
    return out


PERTURBATIONS: dict[str, Perturbation] = {
    "color": _color,
    "brightness": _brightness,
    "noise": _noise,
    "distractors": _distractors,
}
"""Perturbations by name (see the module docstring for what each severity means)."""


def _check_name(name: str) -> str:
    if name not in PERTURBATIONS:
        known = [*PERTURBATIONS, *COLOR_MODES]
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PerturbationError(f"Unknown perturbation {name!r}.{hint} Choose one of: {', '.join(PERTURBATIONS)} "
                                f"(name:severity), or {' / '.join(COLOR_MODES)} (DeepMind Control only, no severity).")
    return name


def perturbation_spec(name: str, severity: int) -> str:
    """`("color", 3)` -> `"color:3"`; a physics-level colour mode has no severity: `("color_hard", 0)` -> `"color_hard"`."""
    return name if name in COLOR_MODES else f"{name}:{severity}"


def _check_severity(severity: object, spec: str) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise PerturbationError(f"Perturbation {spec!r} has severity {severity!r}: pass an integer in "
                                f"{SEVERITIES[0]}..{SEVERITIES[-1]}, e.g. color:3.")
    return int(severity)


def parse_perturbation(spec: str) -> tuple[str, int]:
    """`"color:3"` -> `("color", 3)`; `"color_hard"` -> `("color_hard", 0)` (a physics-level colour mode of
    `envs.dmc_colors`, without severity); an unknown name or a severity outside 1..5 raises `PerturbationError`."""
    if isinstance(spec, str) and spec.strip().partition(":")[0].strip() in COLOR_MODES:
        if ":" in spec:
            raise PerturbationError(f"Perturbation {spec!r}: {spec.partition(':')[0].strip()} has no severity; "
                                    "write it alone, e.g. perturb=color_hard.")
        return spec.strip(), 0
    if not isinstance(spec, str) or ":" not in spec:
        raise PerturbationError(f"Perturbation {spec!r} is not name:severity: write e.g. color:3 "
                                f"(names: {', '.join(PERTURBATIONS)}; severity {SEVERITIES[0]}..{SEVERITIES[-1]}).")
    name, _, level = spec.strip().partition(":")
    _check_name(name.strip())
    try:
        severity = int(level.strip())
    except ValueError:
        severity = level
    return name.strip(), _check_severity(severity, spec)


def parse_perturbations(specs: str) -> list[tuple[str, int]]:
    """`"color:3,noise:2"` -> `[("color", 3), ("noise", 2)]`; empty string -> `[]`."""
    return [parse_perturbation(s) for s in specs.split(",") if s.strip()] if specs.strip() else []


def perturb_frames(frames: np.ndarray, name: str, severity: int, seed: int,
                   steps: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Perturb the frames of one episode, as the `Perturb` wrapper shows them.

    Args:
        frames: `(L, 3, H, W)` uint8, channels first.
        name, severity: a key of `PERTURBATIONS` and an integer in 1..5.
        seed: the episode seed (what `reset(seed=...)` was given), a non-negative integer.
        steps: `(L,)` step index of each frame in its episode; default `0 .. L - 1`.
    Returns:
        `(L, 3, H, W)` uint8.
    """
    if name in COLOR_MODES:
        raise PerturbationError(f"{name} recolours the simulated scene, so recorded frames cannot be given it: "
                                f"record the episode again from make_env(..., perturb={name!r}) instead.")
    fn = PERTURBATIONS[_check_name(name)]
    severity = _check_severity(severity, f"{name}:{severity}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != np.uint8:
        raise PerturbationError(f"perturb_frames needs (L, 3, H, W) uint8 frames, got {frames.shape} {frames.dtype}: "
                                "split frame stacks into 3-channel frames first.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PerturbationError(f"perturb_frames needs a non-negative integer episode seed, got {seed!r}.")
    steps = np.arange(len(frames)) if steps is None else np.asarray(steps, dtype=np.int64)
    if steps.shape != (len(frames),):
        raise PerturbationError(f"steps has shape {steps.shape}; pass one step index per frame ({len(frames)}).")
    out = fn(frames.astype(np.float32), severity, int(seed), steps)
    return np.rint(np.clip(out, 0.0, 255.0)).astype(np.uint8)


class Perturb(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Perturb every observation `(3k, H, W) uint8` (k stacked frames, oldest first) with one
    perturbation at one severity; shape, dtype and observation space are unchanged.

    Each 3-channel frame of a stack is perturbed as of the step it was observed at, so a frame
    looks the same in every stack it appears in. See the module docstring for seeding.
    """

    def __init__(self, env: gym.Env, name: str, severity: int):
        gym.utils.RecordConstructorArgs.__init__(self, name=name, severity=severity)
        gym.ObservationWrapper.__init__(self, env)
        self.name = _check_name(name)
        self.severity = _check_severity(severity, f"{name}:{severity}")
        shape = env.observation_space.shape
        if env.observation_space.dtype != np.uint8 or len(shape) != 3 or shape[0] % 3:
            raise PerturbationError(f"Perturb needs (3k, H, W) uint8 observations, got {env.observation_space}: "
                                    "apply it to an env from envs.make_env.")
        self._seeds = EpisodeSeeds()
        self.episode_seed = 0
        self._step = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.episode_seed = self._seeds.next(seed)
        self._step = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self._step += 1
        return super().step(action)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        frames = rearrange(observation, "(k c) h w -> k c h w", c=3)
        k = len(frames)
        # The frame stack is filled with the first frame at reset: slot i shows step max(0, t - k + 1 + i).
        steps = np.maximum(self._step - k + 1 + np.arange(k), 0)
        out = perturb_frames(frames, self.name, self.severity, self.episode_seed, steps)
        return rearrange(out, "k c h w -> (k c) h w")
