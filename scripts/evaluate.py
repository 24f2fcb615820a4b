"""Evaluate a trained agent: return mean ± std over fresh episodes, optionally with a video.

    python scripts/evaluate.py run_dir=runs/x episodes=10
    python scripts/evaluate.py run_dir=runs/x checkpoint=step_000010000 video=true

Loads the run's config and the latest (or the named) checkpoint, plans with exploration off, and
writes `eval_<checkpoint>.json` (and `videos/eval_<checkpoint>.mp4`) into the run folder.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from agents.agent import PlanningAgent
from agents.loop import evaluate
from agents.runs import RunDir
from agents.video import upscale, write_video
from envs import EnvError, make_vector_env
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import ConfigError, parse_keys
from worldmodel.model import WorldModel
from worldmodel.precision import resolve_device
from worldmodel.trainer import WorldModelTrainer

KEYS = {
    "run_dir": (str, ..., "run folder written by train.py"),
    "episodes": (int, 10, "evaluation episodes"),
    "checkpoint": (str, "latest", "checkpoint folder name under checkpoints/, or latest"),
    "seed": (int, 12345, "seed of the evaluation episodes"),
    "env": (str, "", "must match the run's env when given (a guard against evaluating the wrong run)"),
    "device": (str, "", "override the run's device (auto, cpu, cuda)"),
    "video": (bool, False, "record the episodes to videos/eval_<checkpoint>.mp4"),
    "fps": (int, 15, "video frame rate"),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "evaluate.py")
    try:
        run = RunDir.open(args["run_dir"])
        cfg = run.config()
        if args["env"] and args["env"] != cfg.env:
            raise CheckpointError(f"{run.path} holds an agent trained on {cfg.env!r}, not {args['env']!r}.")
        if args["device"]:
            cfg = cfg.replace(device=args["device"])
        if args["episodes"] < 1:
            raise ConfigError(f"episodes={args['episodes']} must be at least 1.")
        folder, state = run.load(args["checkpoint"])

        envs = make_vector_env(cfg.env, 1, seed=args["seed"], asynchronous=False, image_size=cfg.image_size,
                               frame_stack=cfg.frame_stack, action_repeat=cfg.action_repeat)
        spec = ActionSpec.from_space(envs.single_action_space)
        device = resolve_device(cfg.device)
        model = WorldModel(cfg, spec).to(device)
        trainer = WorldModelTrainer(model, device, cfg.precision, cfg.lr, cfg.grad_clip)
        agent = PlanningAgent(cfg, model, trainer, device, seed=args["seed"])
        agent.load_state_dict(state["agent"])

        frames: list[np.ndarray] = []
        record = (lambda obs: frames.append(upscale(obs[0, -3:].transpose(1, 2, 0), 4))) if args["video"] else None
        with torch.no_grad():
            returns = evaluate(agent, envs, spec, args["episodes"], seed=args["seed"], on_step=record)
        envs.close()
    except (ConfigError, EnvError, CheckpointError, ValueError) as e:
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return 2

    result = {"env": cfg.env, "checkpoint": folder.name, "episodes": len(returns),
              "return_mean": float(returns.mean()), "return_std": float(returns.std()),
              "returns": returns.tolist()}
    (run.path / f"eval_{folder.name}.json").write_text(json.dumps(result, indent=2))
    if frames:
        path = write_video(frames, run.videos / f"eval_{folder.name}.mp4", fps=args["fps"])
        print(f"video: {path}")
    print(f"{cfg.env} {folder.name}: return {returns.mean():.1f} ± {returns.std():.1f} over {len(returns)} episodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
