"""Self-supervised latent world models from pixels.

Imports nothing from `agents` or `envs`. The public API:
"""

from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.cli import parse_cli
from worldmodel.config import PRESETS, Config, ConfigError
from worldmodel.model import WorldModel
from worldmodel.precision import NonFiniteLossError, autocast, resolve_device
from worldmodel.probe import linear_probe, ridge_r2
from worldmodel.replay import ReplayError, SequenceReplay
from worldmodel.trainer import WorldModelTrainer
from worldmodel.visualize import FrameDecoder, fit_decoder, open_loop, own_decoder

__all__ = [
    "PRESETS",
    "ActionSpec",
    "CheckpointError",
    "Config",
    "ConfigError",
    "FrameDecoder",
    "NonFiniteLossError",
    "ReplayError",
    "SequenceReplay",
    "WorldModel",
    "WorldModelTrainer",
    "autocast",
    "fit_decoder",
    "linear_probe",
    "load_checkpoint",
    "open_loop",
    "own_decoder",
    "parse_cli",
    "resolve_device",
    "ridge_r2",
    "save_checkpoint",
]
