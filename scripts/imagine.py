"""Imagined rollouts as video: what the world model dreams next to what really happened.

    python scripts/imagine.py run_dir=runs/x                               # -> runs/x/videos/imagined_<ckpt>.mp4
    python scripts/imagine.py run_dir=runs/x out=imagined.gif episodes=3 context=4 horizon=40
    python scripts/imagine.py run_dir=runs/x source=replay decoder=fitted

For each real episode (recorded now with the trained agent, or slices of the run's replay): encode
`context` frames, imagine `horizon` steps open loop through the dynamics with the actions actually
taken, decode, and write panels real · imagined · |error| (· masked input · filled in, for masked
models) with a caption per frame. A model without a viewable decoder of its own (contrastive only,
latent targets, `norm_pix=true`) first gets a decoder fitted on its frozen latents (the model is not
changed); the caption says which. The open-loop error per imagined step (pixel MSE, latent cosine
error) goes to `<out>.json` and `<out>.csv`. The work is `agents.analysis.imagine.imagine_run`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agents.analysis.imagine import DECODER_KINDS, imagine_run
from agents.training.assembly import load_run
from agents.training.runs import writable
from envs import EnvError
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import parse_keys
from worldmodel.config import ConfigError

KEYS = {
    "run_dir": (str, ..., "run folder written by train.py or pretrain.py"),
    "out": (str, "", "video file, .mp4 or .gif (default: <run_dir>/videos/imagined_<checkpoint>.mp4)"),
    "episodes": (int, 2, "episodes (or replay slices) shown one after another"),
    "context": (int, 4, "real frames encoded before imagining"),
    "horizon": (int, 30, "steps imagined open loop after the context"),
    "fps": (int, 10, "video frame rate"),
    "scale": (int, 4, "panel upscaling factor"),
    "source": (str, "fresh", "fresh: record new episodes; replay: slices of the checkpoint's replay"),
    "policy": (str, "agent", "who acts in fresh episodes: agent (the trained planner) or random"),
    "decoder": (str, "auto", "auto: the model's own when viewable, else fitted; own; fitted"),
    "decoder_steps": (int, 1000, "training steps of a fitted decoder"),
    "masked": (bool, True, "add the masked-frame panels (masked input, filled in) for masked models"),
    "checkpoint": (str, "latest", "checkpoint folder name under checkpoints/, or latest"),
    "seed": (int, 12345, "seed of the episodes, replay slices, masks and decoder fitting"),
    "device": (str, "", "override the run's device (auto, cpu, cuda)"),
}
CHOICES = {"source": ("fresh", "replay"), "policy": ("agent", "random"), "decoder": DECODER_KINDS}
LEAST = {"episodes": 1, "context": 1, "horizon": 1, "fps": 1, "scale": 1, "decoder_steps": 0}


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "imagine.py")
    options = {key: args[key] for key in KEYS if key not in ("run_dir", "out", "checkpoint", "device")}
    try:
        for key, choices in CHOICES.items():
            if args[key] not in choices:
                raise ConfigError(f"{key}={args[key]!r} is not valid: choose one of {', '.join(choices)}.")
        for key, least in LEAST.items():
            if args[key] < least:
                raise ConfigError(f"{key}={args[key]} must be at least {least}.")
        loaded = load_run(args["run_dir"], args["checkpoint"], seed=args["seed"], device=args["device"])
        out = Path(args["out"]) if args["out"] else loaded.run.videos / f"imagined_{loaded.checkpoint.name}.mp4"
        if not writable(out.parent):  # before any episode is recorded or decoder fitted
            raise CheckpointError(f"cannot write {out}: {out.parent} is read-only; pass out=<a file in a folder "
                                  "you can write>.")
        errors = imagine_run(loaded.agent, loaded.cfg, loaded.spec, loaded.checkpoint, loaded.run.path, out,
                             **options)
    except (ConfigError, EnvError, CheckpointError, ValueError) as e:
        print(f"imagine.py: error: {e}", file=sys.stderr)
        return 2

    per_step, context, horizon = errors["per_step"], errors["context"], errors["horizon"]
    shown = sorted({0, horizon // 2, horizon - 1})
    summary = ", ".join(f"+{per_step['step'][i]}: {per_step['pixel_mse'][i]:.4f} / "
                        f"{per_step['latent_cosine_error'][i]:.3f}" for i in shown)
    print(f"video: {out}  ({errors['episodes']} x ({context} + {horizon}) frames, {errors['decoder']} decoder)")
    print(f"errors: {out.with_suffix('.json')}, {out.with_suffix('.csv')}")
    print(f"open-loop pixel MSE / latent cosine error per imagined step: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
