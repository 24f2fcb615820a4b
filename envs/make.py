"""Turn any Gymnasium id that renders `rgb_array` into a pixel environment.

    env = make_env("Pendulum-v1", image_size=64, frame_stack=1, action_repeat=2, seed=0)
    obs, info = env.reset()          # obs: (3, 64, 64) uint8; info["state"]: (3,) float32
    obs, r, terminated, truncated, info = env.step(env.action_space.sample())   # actions in [-1, 1]

Classic control works out of the box. The extras add MuJoCo (`pip install -e .[mujoco]`),
DeepMind Control through shimmy (`.[dmc]`, ids `dm_control/<domain>-<task>-v0`) and Atari
(`.[atari]`, ids `ALE/<Game>-v5`). `perturb="color:3"` adds an out-of-distribution visual
perturbation for robustness evaluation (`envs/perturb.py`).
"""

from __future__ import annotations

import difflib
import functools
import multiprocessing
from typing import Any

import gymnasium as gym
import numpy as np

from envs.dmc_colors import MODES as COLOR_MODES
from envs.dmc_colors import ColorModeError, DmcColors
from envs.errors import (
    EnvError,
    MissingExtraError,
    NotRenderableError,
    UnknownEnvError,
    UnsupportedActionSpaceError,
)
from envs.perturb import Perturb, parse_perturbation
from envs.wrappers import ActionRepeat, DmcRender, FrameStack, PixelObservation

IMAGE_SIZE_RANGE = (16, 512)
FRAME_STACK_RANGE = (1, 16)
ACTION_REPEAT_RANGE = (1, 1000)

_INSTALL = "pip install -e '.[{extra}]'  (or: .venv/bin/pip install -e '.[{extra}]')"


def _check_int(name: str, value: Any, bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise EnvError(f"{name}={value!r} is out of range: pass an integer in [{lo}, {hi}].")
    return int(value)


def _register_extra(env_id: str) -> None:
    """Import the extra that registers `env_id`'s namespace, or say which extra to install."""
    if env_id.startswith("ALE/"):
        try:
            import ale_py
        except ImportError:
            raise MissingExtraError(
                f"{env_id!r} is an Atari game and needs the 'atari' extra: {_INSTALL.format(extra='atari')}"
            ) from None
        gym.register_envs(ale_py)
    elif env_id.startswith("dm_control/"):
        try:
            import shimmy
        except ImportError:
            raise MissingExtraError(
                f"{env_id!r} is a DeepMind Control task and needs the 'dmc' extra: {_INSTALL.format(extra='dmc')}"
            ) from None
        gym.register_envs(shimmy)


def _is_mujoco(spec: gym.envs.registration.EnvSpec) -> bool:
    entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
    return "gymnasium.envs.mujoco" in entry


def resolve_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec for `env_id`; unknown ids raise with the closest registered ones."""
    if not isinstance(env_id, str) or not env_id:
        raise UnknownEnvError(f"env id must be a non-empty string, got {env_id!r}.")
    _register_extra(env_id)
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        extras = ""
        if not close and "/" not in env_id:
            extras = " Atari ids look like 'ALE/Pong-v5' (extra 'atari'); DeepMind Control ids like 'dm_control/cartpole-swingup-v0' (extra 'dmc')."
        raise UnknownEnvError(f"Unknown environment id {env_id!r}.{hint}{extras}")
    return gym.spec(env_id)


def _make_base(spec: gym.envs.registration.EnvSpec, image_size: int, kwargs: dict) -> gym.Env:
    kwargs = dict(kwargs)
    if _is_mujoco(spec):
        kwargs.setdefault("width", image_size)
        kwargs.setdefault("height", image_size)
    if spec.id.startswith("dm_control/"):
        kwargs.setdefault("render_kwargs", {"width": image_size, "height": image_size, "camera_id": 0})
    try:
        return gym.make(spec.id, render_mode="rgb_array", **kwargs)
    except gym.error.DependencyNotInstalled as e:
        extra = "mujoco" if _is_mujoco(spec) else "dmc" if spec.id.startswith("dm_control/") else None
        fix = _INSTALL.format(extra=extra) if extra else "install the package named above"
        raise MissingExtraError(f"{spec.id!r} needs a dependency that is not installed ({e}). Fix: {fix}") from None
    except ImportError as e:  # registered, but its module cannot be imported here (jax, a moved env, ...)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MissingExtraError(f"{spec.id!r} is registered but cannot be built here ({first.rstrip('.')}). "
                                "Fix: install what it needs, or choose another id.") from None
    except TypeError as e:  # e.g. a wrapper id that needs arguments of its own (GymV26Environment-v0: env_id=)
        raise EnvError(f"{spec.id!r} cannot be built from its id alone: {e}.") from None


def _dmc_rendered(env: gym.Env) -> gym.Env:
    """A DeepMind Control env inside `DmcRender` (one persistent camera, a smaller shadow map), when it
    renders by size and camera alone; with other `render_kwargs` (e.g. a scene option) shimmy's own render."""
    kwargs = getattr(env.unwrapped, "render_kwargs", None) or {}
    if set(kwargs) - {"width", "height", "camera_id"} or not hasattr(getattr(env.unwrapped, "_env", None), "physics"):
        return env
    # dm_control's own defaults for what the kwargs leave out
    return DmcRender(env, kwargs.get("width", 320), kwargs.get("height", 240), kwargs.get("camera_id", -1))


def _recolored(env: gym.Env, spec: gym.envs.registration.EnvSpec, mode: str) -> gym.Env:
    """`env` inside `DmcColors` (physics-level colour shift); a clear error for an env outside DeepMind Control."""
    if not spec.id.startswith("dm_control/"):
        env.close()
        raise ColorModeError(f"perturb={mode} recolours DeepMind Control scenes; {spec.id!r} is not one. "
                             "Use an image-level perturbation instead, e.g. perturb=color:3.")
    domain = spec.id.split("/", 1)[1].split("-", 1)[0]
    try:
        return DmcColors(env, mode, domain)
    except ColorModeError:
        env.close()
        raise


def _mujoco_fast_render(env: gym.Env) -> None:
    """Turn off shadows and reflections: ~10x faster software rendering, same scene."""
    renderer = getattr(env.unwrapped, "mujoco_renderer", None)
    if renderer is None:
        return
    import mujoco

    viewer = renderer._get_viewer("rgb_array")
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0


def make_env(
    env_id: str,
    *,
    image_size: int = 64,
    frame_stack: int = 1,
    action_repeat: int = 1,
    seed: int | None = None,
    perturb: str | None = None,
    suite_render: bool = False,
    **kwargs: Any,
) -> gym.Env:
    """A headless pixel environment for any Gymnasium id that renders `rgb_array`.

    Args:
        env_id: a registered Gymnasium id (`Pendulum-v1`, `ALE/Pong-v5`, `dm_control/cartpole-swingup-v0`).
        image_size: side of the square frames, in [16, 512].
        frame_stack: frames concatenated along channels, in [1, 16].
        action_repeat: simulator steps per agent step (rewards summed), in [1, 1000].
        seed: seeds the first reset and the action space.
        perturb: `"name:severity"` (e.g. `"color:3"`, see `envs.perturb`): perturb the observations,
            outermost, after frame stacking; `"color_easy"` / `"color_hard"` / `"color_all_easy"` /
            `"color_all_hard"` (DeepMind Control only, see `envs.dmc_colors`): recolour the simulated
            scene at each reset; None for clean frames.
        suite_render: DeepMind Control only: render with shimmy's own renderer (a new camera per frame,
            the model's 2048² shadow map: the suite's exact pixels, 1.1-1.9x slower in software GL)
            instead of `DmcRender`.
        **kwargs: passed to `gymnasium.make`.

    Returns:
        An env with observation space `Box(0, 255, (3 * frame_stack, image_size, image_size), uint8)`;
        a `Box` action space rescaled to [-1, 1] or the original `Discrete`; `info["state"]` holding
        the low-dimensional state (float32) where the environment has one.
    """
    image_size = _check_int("image_size", image_size, IMAGE_SIZE_RANGE)
    frame_stack = _check_int("frame_stack", frame_stack, FRAME_STACK_RANGE)
    action_repeat = _check_int("action_repeat", action_repeat, ACTION_REPEAT_RANGE)
    perturbation = None if perturb is None else parse_perturbation(perturb)
    spec = resolve_id(env_id)
    env = _make_base(spec, image_size, kwargs)
    if spec.id.startswith("dm_control/") and not suite_render:
        env = _dmc_rendered(env)
    if perturbation is not None and perturbation[0] in COLOR_MODES:
        env = _recolored(env, spec, perturbation[0])
        perturbation = None

    modes = env.metadata.get("render_modes", [])
    if "rgb_array" not in modes:
        env.close()
        raise NotRenderableError(
            f"{env_id!r} cannot render 'rgb_array' frames (its render modes: {modes or 'none'}). "
            "Use an environment whose metadata lists 'rgb_array', or add an rgb_array render() to it."
        )
    space = env.action_space
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            env.close()
            raise UnsupportedActionSpaceError(
                f"{env_id!r} has an unbounded Box action space {space}: actions cannot be scaled to [-1, 1]. "
                "Wrap it with gymnasium.wrappers.ClipAction around explicit bounds first."
            )
        # Bounds in the space's own dtype: float32 bounds on a float64 space (DeepMind Control's)
        # make gymnasium's Box check cast float64's limits to float32, warning of an overflow.
        ones = np.ones(space.shape, dtype=space.dtype)
        env = gym.wrappers.RescaleAction(env, -ones, ones)
        # Clip in the agent's [-1, 1] frame (gymnasium's ClipAction would widen the space to ±inf).
        env = gym.wrappers.TransformAction(env, functools.partial(np.clip, a_min=-1.0, a_max=1.0), env.action_space)
    elif not isinstance(space, gym.spaces.Discrete):
        env.close()
        raise UnsupportedActionSpaceError(
            f"{env_id!r} has action space {space}; supported are a 1-D Box (continuous) or Discrete. "
            "Flatten or discretise it with a gymnasium action wrapper first."
        )

    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    env = PixelObservation(env, image_size)
    if frame_stack > 1:
        env = FrameStack(env, frame_stack)
    if perturbation is not None:
        env = Perturb(env, *perturbation)
    if _is_mujoco(spec):
        _mujoco_fast_render(env)
    if seed is not None:
        env.action_space.seed(seed)
        env.reset(seed=seed)
    return env


def _worker_context() -> str:
    # `fork` hangs with MuJoCo once the parent holds a GL context; forkserver does not, and starts
    # workers from a clean process (no inherited torch threads).
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def make_vector_env(
    env_id: str,
    num_envs: int,
    *,
    seed: int | None = None,
    asynchronous: bool = True,
    context: str | None = None,
    perturb: str | None = None,
    **make_kwargs: Any,
) -> gym.vector.VectorEnv:
    """`num_envs` pixel environments stepping together (gymnasium.vector).

    Asynchronous workers by default (one process each). Episodes reset automatically on the step
    *after* they end (gymnasium's NEXT_STEP autoreset): that step returns the first frame of the
    new episode with reward 0 and ignores its action. Env `i` is seeded with `seed + i`.

    Args:
        perturb: `"name:severity"` applied to every env (see `make_env`); each env's perturbation
            is seeded with its own reset seed.
        make_kwargs: `image_size`, `frame_stack`, `action_repeat` and `gymnasium.make` kwargs.
    """
    num_envs = _check_int("num_envs", num_envs, (1, 1024))
    make_kwargs["perturb"] = perturb
    # Validate in this process first, so a bad id fails with our message, not inside a worker.
    make_env(env_id, **make_kwargs).close()
    fns = [functools.partial(make_env, env_id, **make_kwargs) for _ in range(num_envs)]
    if asynchronous:
        vec = gym.vector.AsyncVectorEnv(fns, context=context or _worker_context())
    else:
        vec = gym.vector.SyncVectorEnv(fns)
    if seed is not None:
        vec.action_space.seed(seed)
        vec.reset(seed=seed)
    return vec
