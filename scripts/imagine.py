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
error) goes to `<out>.json` and `<out>.csv`.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from agents.agent import PlanningAgent
from agents.collect import record_episodes
from agents.imagine import decoder_for, write_imagined_video
from agents.runs import RunDir
from agents.transfer import encoder_lr
from envs import EnvError, make_env
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import ConfigError, parse_keys
from worldmodel.model import WorldModel
from worldmodel.precision import resolve_device
from worldmodel.replay import SequenceReplay
from worldmodel.trainer import WorldModelTrainer
from worldmodel.visualize import check_rollout_length, own_decoder

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


def _choice(args: dict, key: str, choices: tuple[str, ...]) -> str:
    if args[key] not in choices:
        raise ConfigError(f"{key}={args[key]!r} is not valid: choose one of {', '.join(choices)}.")
    return args[key]


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "imagine.py")
    try:
        source = _choice(args, "source", ("fresh", "replay"))
        policy_name = _choice(args, "policy", ("agent", "random"))
        decoder_kind = _choice(args, "decoder", ("auto", "own", "fitted"))
        for key in ("episodes", "context", "horizon", "fps", "scale"):
            if args[key] < 1:
                raise ConfigError(f"{key}={args[key]} must be at least 1.")
        if args["decoder_steps"] < 0:
            raise ConfigError(f"decoder_steps={args['decoder_steps']} must be at least 0.")
        run = RunDir.open(args["run_dir"])
        cfg = run.config()
        if args["device"]:
            cfg = cfg.replace(device=args["device"])
        folder, state = run.load(args["checkpoint"])
        out = Path(args["out"]) if args["out"] else run.videos / f"imagined_{folder.name}.mp4"
        if out.suffix.lower() not in (".mp4", ".gif"):
            raise ConfigError(f"out={out}: the video must be a .mp4 or .gif file.")
        context, horizon = args["context"], args["horizon"]

        env = make_env(cfg.env, image_size=cfg.image_size, frame_stack=cfg.frame_stack,
                       action_repeat=cfg.action_repeat, seed=args["seed"])
        spec = ActionSpec.from_space(env.action_space)
        device = resolve_device(cfg.device)
        model = WorldModel(cfg, spec).to(device)
        trainer = WorldModelTrainer(model, device, cfg.precision, cfg.lr, cfg.grad_clip, encoder_lr=encoder_lr(cfg))
        agent = PlanningAgent(cfg, model, trainer, device, seed=args["seed"])
        if "agent" in state:  # an online run (train.py)
            agent.load_state_dict(state["agent"])
        else:  # offline pretraining (pretrain.py)
            trainer.load_state_dict(state["trainer"])
        model.eval()
        own = own_decoder(model)
        if decoder_kind == "own" and own is None:
            raise ValueError(f"this model has no viewable decoder of its own (objective={cfg.objective}, "
                             f"mask_target={cfg.mask_target}, norm_pix={cfg.norm_pix}): use decoder=auto or fitted.")
        needs_fit = decoder_kind == "fitted" or (decoder_kind == "auto" and own is None)

        fit_replay = fit_episodes = None
        if source == "replay":
            replay = _replay(run, folder, cfg.history - 1 + context + horizon)
            if replay is None:
                raise CheckpointError(f"{folder} keeps no replay: use source=fresh.")
            if not replay.can_sample():
                raise ValueError(f"context={context} + horizon={horizon} steps need episodes of {replay.seq_len} "
                                 f"steps with the encoder's history; the replay holds none that long: lower horizon=.")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args["seed"])
                batch = replay.sample(args["episodes"])
            episodes, start, title = [batch[i] for i in range(args["episodes"])], cfg.history - 1, "replay slice"
            fit_replay = replay
        else:
            _check_time_limit(env, cfg.action_repeat, context, horizon)
            policy = None if policy_name == "random" else _agent_policy(agent)
            episodes = record_episodes(env, spec, args["episodes"], seed=args["seed"], policy=policy)
            start, title = 0, "episode"
            if needs_fit:
                fit_replay = _replay(run, folder, cfg.sample_len)
        # An episode that ended early is refused before any decoder is fitted.
        check_rollout_length(min(len(ep["obs"]) for ep in episodes), context, horizon, start)
        if needs_fit and (fit_replay is None or not fit_replay.can_sample()):
            # No replay to learn from: random episodes of their own, not the ones shown.
            fit_episodes = record_episodes(env, spec, max(4, args["episodes"]), seed=args["seed"] + 1_000_003)
        env.close()

        decoder = decoder_for(model, cfg, replay=fit_replay, episodes=fit_episodes, steps=args["decoder_steps"],
                              seed=args["seed"], kind=decoder_kind)
        _, errors = write_imagined_video(model, cfg, episodes, out, decoder=decoder, context=context,
                                         horizon=horizon, start=start, fps=args["fps"], scale=args["scale"],
                                         masked=args["masked"], decoder_steps=0, seed=args["seed"], title=title)
    except (ConfigError, EnvError, CheckpointError, ValueError) as e:
        print(f"imagine.py: error: {e}", file=sys.stderr)
        return 2

    per_step = errors["per_step"]
    shown = sorted({0, horizon // 2, horizon - 1})
    summary = ", ".join(f"+{per_step['step'][i]}: {per_step['pixel_mse'][i]:.4f} / "
                        f"{per_step['latent_cosine_error'][i]:.3f}" for i in shown)
    print(f"video: {out}  ({errors['episodes']} x ({context} + {horizon}) frames, {errors['decoder']} decoder)")
    print(f"errors: {out.with_suffix('.json')}, {out.with_suffix('.csv')}")
    print(f"open-loop pixel MSE / latent cosine error per imagined step: {summary}")
    return 0


def _replay(run: RunDir, folder: Path, seq_len: int) -> SequenceReplay | None:
    """The checkpoint's replay (train.py), else the run's (pretrain.py), sampling `seq_len` steps; None if neither."""
    for path in (folder / "replay", run.path / "replay"):
        if (path / "meta.json").is_file():
            return SequenceReplay.from_saved(path, seq_len)
    return None


def _check_time_limit(env, action_repeat: int, context: int, horizon: int) -> None:
    """Refuse before recording anything when no episode of this env can hold context + horizon steps."""
    limit = getattr(env.spec, "max_episode_steps", None)
    if limit:
        length = math.ceil(limit / action_repeat) + 1  # agent steps + the first frame
        if context + horizon > length:
            raise ValueError(f"context={context} + horizon={horizon} = {context + horizon} steps, but episodes of "
                             f"{env.spec.id} last at most {length} steps (time limit {limit}, action_repeat "
                             f"{action_repeat}): lower horizon= (at most {length - context}).")


def _agent_policy(agent: PlanningAgent):
    def act(obs: torch.Tensor, first: bool) -> torch.Tensor:
        if first:
            agent.reset(torch.ones(1, dtype=torch.bool), eval=True)
        return agent.act(obs, eval=True)

    return act


if __name__ == "__main__":
    raise SystemExit(main())
