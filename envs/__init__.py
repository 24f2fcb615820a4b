"""Pixel environments: any Gymnasium id that renders `rgb_array`, as uint8 channels-first frames.

Imports nothing else of this project.
"""

import os

# Classic control draws with pygame; without these it looks for a display and a sound card.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
# SDL otherwise takes over SIGTERM (turning it into a quit event nobody reads), so `kill`, a job
# scheduler's time limit or torchrun stopping a failed group would leave a training process running.
os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
# MuJoCo and dm_control pick their GL backend when first imported: headless EGL (Mesa's software
# EGL works without a display) unless the user chose one. Unset, rendering fails to load GL.
os.environ.setdefault("MUJOCO_GL", "egl")

from envs.dmc_colors import MODES as COLOR_MODES
from envs.dmc_colors import ColorModeError, DmcColors
from envs.errors import (
    EnvError,
    MissingExtraError,
    NotRenderableError,
    UnknownEnvError,
    UnsupportedActionSpaceError,
)
from envs.make import make_env, make_vector_env, resolve_id
from envs.perturb import (
    PERTURBATIONS,
    Perturb,
    PerturbationError,
    parse_perturbation,
    parse_perturbations,
    perturb_frames,
    perturbation_spec,
)
from envs.suites import PLANET_ACTION_REPEAT, suite_defaults
from envs.wrappers import ActionRepeat, FrameStack, PixelObservation, flatten_state

__all__ = [
    "PERTURBATIONS",
    "PLANET_ACTION_REPEAT",
    "ActionRepeat",
    "EnvError",
    "FrameStack",
    "MissingExtraError",
    "NotRenderableError",
    "COLOR_MODES",
    "ColorModeError",
    "DmcColors",
    "Perturb",
    "PerturbationError",
    "PixelObservation",
    "UnknownEnvError",
    "UnsupportedActionSpaceError",
    "flatten_state",
    "make_env",
    "make_vector_env",
    "parse_perturbation",
    "parse_perturbations",
    "perturbation_spec",
    "perturb_frames",
    "resolve_id",
    "suite_defaults",
]
