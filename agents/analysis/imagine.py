"""Imagined-rollout videos of real episodes, with the open-loop prediction error beside them.

    decoder, errors = write_imagined_video(model, cfg, episodes, "runs/x/videos/imagined.mp4", replay=replay)
    logger.log(step, errors["metrics"])       # imagine/pixel_mse, imagine/latent_cosine_error, ...

For each episode: encode C context frames, imagine H steps open loop with the actions taken, decode,
and show real · imagined · |error| (· the masked objective's view, for masked models). Writes the
video and, next to it, `<name>.json` and `<name>.csv` with the error per imagined step.

Which decoder: a model trained on raw pixel targets (`mask_target=pixel`, `norm_pix=false`) decodes
with its own; any other model (contrastive only, latent targets, normalised pixels) gets a decoder
fitted on its frozen latents first, so the video never shapes the representation.
"""

from __future__ import annotations

import json
import math
import os
from contextlib import closing
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict

from agents.agent import PlanningAgent
from agents.analysis.video import check_video_path, rollout_frames, write_video
from agents.episodes import make_single_env, record_episodes
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError
from worldmodel.config import Config
from worldmodel.model import WorldModel
from worldmodel.replay import SequenceReplay
from worldmodel.visualize import (
    FrameDecoder,
    check_rollout_length,
    eval_mode,
    fit_decoder,
    latent_frame_pairs,
    masked_view,
    open_loop,
    own_decoder,
)

DECODER_PAIRS = 2048
"""(latent, frame) pairs drawn from the replay to fit a decoder."""
DECODER_KINDS = ("auto", "own", "fitted")


def needs_fitted_decoder(model: WorldModel, kind: str = "auto") -> bool:
    """Whether decoder `kind` (one of `DECODER_KINDS`) means fitting a decoder on frozen latents;
    a ValueError for an unknown kind, or for "own" when the model cannot show pixels itself."""
    if kind not in DECODER_KINDS:
        raise ValueError(f"decoder={kind!r} is not valid: choose auto, own or fitted.")
    viewable, cfg = own_decoder(model) is not None, model.cfg
    if kind == "own" and not viewable:
        raise ValueError(f"this model has no viewable decoder of its own (objective={cfg.objective}, "
                         f"mask_target={cfg.mask_target}, norm_pix={cfg.norm_pix}): use decoder=auto or fitted.")
    return kind == "fitted" or not viewable


def decoder_for(model: WorldModel, cfg: Config, *, replay: SequenceReplay | None = None,
                episodes: list[TensorDict] | None = None, decoder: FrameDecoder | None = None,
                steps: int = 500, seed: int = 0, kind: str = "auto") -> FrameDecoder:
    """The decoder an imagined rollout is shown with: with no `decoder`, the model's own when `kind`
    allows it (`needs_fitted_decoder`), else one fitted for `steps` on frozen latents of the replay's
    frames (or of the `episodes`' `obs (L, 3, H, W)` uint8 when it cannot sample); a fitted `decoder`
    given is fitted `steps` more (0: used as it is), e.g. to follow an encoder still training."""
    if decoder is None:
        if not needs_fitted_decoder(model, kind):
            return own_decoder(model)
    elif decoder.kind == "own" or steps == 0:
        return decoder
    with torch.random.fork_rng(devices=[]):  # the replay samples from the global generator
        torch.manual_seed(seed)
        if replay is not None and replay.can_sample():
            batch = replay.sample(max(1, math.ceil(DECODER_PAIRS / max(replay.seq_len - model.history + 1, 1))))
            latents, frames = latent_frame_pairs(model, batch["obs"])
        elif episodes:
            latents, frames = latent_frame_pairs(model, [ep["obs"] for ep in episodes])
        else:
            raise ValueError("no frames to fit a decoder on: pass a replay with data or some episodes.")
    return fit_decoder(cfg, latents, frames, steps=steps, seed=seed, device=next(model.parameters()).device,
                       init=decoder)


def write_imagined_video(model: WorldModel, cfg: Config, episodes: list[TensorDict], path: str | Path, *,
                         decoder: FrameDecoder | None = None, replay: SequenceReplay | None = None,
                         context: int = 4, horizon: int = 30, start: int = 0, fps: int = 10, scale: int = 4,
                         masked: bool = True, decoder_steps: int = 500, seed: int = 0,
                         title: str = "episode") -> tuple[FrameDecoder, dict[str, Any]]:
    """Write the imagined rollouts of `episodes` to `path` (.mp4 or .gif), and the errors beside it.

    Args:
        model: the world model (only read; left in the train/eval mode it was in).
        cfg: its config.
        episodes: TensorDicts with `obs (L, 3, H, W)` uint8 and `action (L, A)` (the replay's
            convention), e.g. from `agents.episodes.record_episodes`; each needs `start + C + H` steps.
        path: the video file; `<stem>.json` and `<stem>.csv` are written next to it.
        decoder: see `decoder_for` (None: the model's own, or one fitted now).
        replay: frames to fit a decoder on (default: the episodes themselves).
        context, horizon: C real frames encoded, then H steps imagined open loop.
        start: rows of each episode used only as encoder history (k - 1 for replay slices).
        fps, scale: frame rate and panel upscaling.
        masked: add the masked objective's panels (masked input, filled in) for masked models.
        decoder_steps: steps of decoder fitting (see `decoder_for`).
        seed: seeds decoder fitting, replay sampling and masks; the global RNG state is left as it was.
        title: names the items in the caption ("episode 1/2").

    Returns:
        the decoder used (hand it back next time to refine rather than refit it), and the errors:
        `{"decoder", "objective", "context", "horizon", "episodes", "decoder_fit_mse",
        "per_step": {"step", "pixel_mse", "latent_cosine_error", "recon_pixel_mse"},
        "per_episode": {"pixel_mse", "latent_cosine_error"}, "metrics": {"imagine/...": float}}`.
        Per-step values `(H,)` are means over episodes, per-episode ones `(N, H)`; `metrics` are
        scalars ready for a metrics logger.
    """
    path = check_video_path(path)
    if not episodes:
        raise ValueError("no episodes to imagine.")
    if scale < 1 or fps < 1:
        raise ValueError(f"scale={scale} and fps={fps} must be at least 1.")
    check_rollout_length(min(len(ep["obs"]) for ep in episodes), context, horizon, start)
    decoder = decoder_for(model, cfg, replay=replay, episodes=episodes, decoder=decoder, steps=decoder_steps,
                          seed=seed)
    show_masked = masked and model.uses_masked

    frames, rollouts = [], []
    for i, ep in enumerate(episodes):
        rollout = open_loop(model, ep, context, horizon, decoder, start=start)
        view = masked_view(model, ep, context + horizon, decoder, start=start, seed=seed + i) if show_masked else None
        rollouts.append(rollout)
        frames += rollout_frames(rollout, decoder.description, cfg.objective, scale=scale, masked=view,
                                 title=f"{title} {i + 1}/{len(episodes)}")

    errors = _errors(rollouts, decoder, cfg)
    write_video(frames, path, fps=fps)
    for suffix, text in ((".json", json.dumps(errors, indent=2)), (".csv", _csv(errors))):
        tmp = path.with_suffix(suffix + ".tmp")  # then renamed: never a half-written file
        tmp.write_text(text)
        os.replace(tmp, path.with_suffix(suffix))
    return decoder, errors


def imagine_run(agent: PlanningAgent, cfg: Config, spec: ActionSpec, checkpoint: Path, run_dir: Path,
                out: str | Path, *, source: str = "fresh", policy: str = "agent", decoder: str = "auto",
                episodes: int = 2, context: int = 4, horizon: int = 30, fps: int = 10, scale: int = 4,
                decoder_steps: int = 1000, masked: bool = True, seed: int = 12345) -> dict[str, Any]:
    """What scripts/imagine.py does with a loaded run (`agents.training.assembly.load_run`: its agent,
    cfg, spec, checkpoint folder and run folder): write the imagined rollouts to `out`, errors beside it.

    `source`: "fresh" episodes recorded now, with `policy` "agent" (exploration off) or "random" acting,
    or "replay" slices of the checkpoint's replay (else the run's). `decoder`: one of `DECODER_KINDS`; a
    fitted one learns `decoder_steps` on the saved replay, else on random episodes that are not shown.
    The rest as in `write_imagined_video`; `seed` also seeds the episodes. Returns its errors; bad input
    raises a ValueError or `CheckpointError` before anything is written.
    """
    out, model = check_video_path(out), agent.model
    with eval_mode(model):
        replay = fit_episodes = None
        with closing(make_single_env(cfg, seed=seed)) as env:
            fit = needs_fitted_decoder(model, decoder)
            if source == "replay":
                replay = _saved_replay(checkpoint, run_dir, cfg.history - 1 + context + horizon)
                if replay is None:
                    raise CheckpointError(f"{checkpoint} keeps no replay: use source=fresh.")
                if not replay.can_sample():
                    raise ValueError(f"context={context} + horizon={horizon} steps need episodes of "
                                     f"{replay.seq_len} steps with the encoder's history; the replay holds none "
                                     "that long: lower horizon=.")
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    batch = replay.sample(episodes)
                shown, start, title = [batch[i] for i in range(episodes)], cfg.history - 1, "replay slice"
            else:
                _check_time_limit(env, cfg.action_repeat, context, horizon)
                shown = record_episodes(env, spec, episodes, seed=seed,
                                        policy=None if policy == "random" else _agent_policy(agent))
                start, title = 0, "episode"
                if fit:
                    replay = _saved_replay(checkpoint, run_dir, cfg.sample_len)
            # An episode that ended early is refused before any decoder is fitted.
            check_rollout_length(min(len(ep["obs"]) for ep in shown), context, horizon, start)
            if fit and (replay is None or not replay.can_sample()):
                # No replay to learn from: random episodes of their own, not the ones shown.
                fit_episodes = record_episodes(env, spec, max(4, episodes), seed=seed + 1_000_003)
        fitted = decoder_for(model, cfg, replay=replay, episodes=fit_episodes, steps=decoder_steps, seed=seed,
                             kind=decoder)
        _, errors = write_imagined_video(model, cfg, shown, out, decoder=fitted, context=context, horizon=horizon,
                                         start=start, fps=fps, scale=scale, masked=masked, decoder_steps=0,
                                         seed=seed, title=title)
    return errors


class ImaginedVideos:
    """`on_evaluate` hook of the training loop: record one episode with the agent (exploration off),
    imagine it open loop from a few real frames, and write `videos/imagined_<step>.mp4` with its
    per-step errors. The decoder (fitted on frozen latents unless the model's own can show pixels)
    is kept and refined from one evaluation to the next."""

    def __init__(self, cfg: Config, agent: PlanningAgent, spec: ActionSpec, replay: SequenceReplay, videos: Path):
        self.cfg, self.agent, self.spec, self.replay, self.videos = cfg, agent, spec, replay, Path(videos)
        self.env = make_single_env(cfg, seed=cfg.seed + 2)
        self.decoder: FrameDecoder | None = None

    def __call__(self, step: int, episodes: list | None = None) -> dict[str, float]:
        """Write the video of evaluation `step` (the evaluation's own `episodes` are not used: the
        video plays its own episode, from the run's seed and the step)."""
        policy = _agent_policy(self.agent)
        episode = record_episodes(self.env, self.spec, 1, seed=self.cfg.seed + 3 + step, policy=policy)
        horizon = min(30, len(episode[0]) - 5)
        if horizon < 1:
            return {}  # an episode too short to imagine anything (e.g. an early CartPole fall)
        self.decoder, errors = write_imagined_video(
            self.agent.model, self.cfg, episode, self.videos / f"imagined_{step:09d}.mp4",
            decoder=self.decoder, replay=self.replay, context=4, horizon=horizon,
            decoder_steps=500 if self.decoder is None else 100, seed=self.cfg.seed)
        return errors["metrics"]

    def close(self) -> None:
        self.env.close()


def _agent_policy(agent: PlanningAgent):
    """`agent` acting with exploration off, as a `record_episodes` policy `(obs (1, C, H, W) uint8, first)
    -> (1, A)`; its memory is reset at each episode's first step."""
    def act(obs: torch.Tensor, first: bool) -> torch.Tensor:
        if first:
            agent.reset(torch.ones(1, dtype=torch.bool), eval=True)
        return agent.act(obs, eval=True)

    return act


def _saved_replay(checkpoint: Path, run_dir: Path, seq_len: int) -> SequenceReplay | None:
    """The checkpoint's replay (train.py), else the run's (pretrain.py), sampling `seq_len` steps; None if neither."""
    for path in (checkpoint / "replay", run_dir / "replay"):
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


def _errors(rollouts, decoder: FrameDecoder, cfg: Config) -> dict[str, Any]:
    pixel = torch.stack([r.pixel_mse for r in rollouts])  # (N, H)
    cosine = torch.stack([r.latent_cosine_error for r in rollouts])
    recon = torch.stack([r.recon_mse[r.context:] for r in rollouts])
    horizon = pixel.shape[1]
    return {
        "decoder": decoder.kind,
        "objective": cfg.objective,
        "context": rollouts[0].context,
        "horizon": horizon,
        "episodes": len(rollouts),
        "decoder_fit_mse": decoder.fit_mse,
        "per_step": {"step": list(range(1, horizon + 1)), "pixel_mse": pixel.mean(0).tolist(),
                     "latent_cosine_error": cosine.mean(0).tolist(), "recon_pixel_mse": recon.mean(0).tolist()},
        "per_episode": {"pixel_mse": pixel.tolist(), "latent_cosine_error": cosine.tolist()},
        "metrics": {
            "imagine/pixel_mse": float(pixel.mean()),
            "imagine/pixel_mse_last": float(pixel[:, -1].mean()),
            "imagine/latent_cosine_error": float(cosine.mean()),
            "imagine/latent_cosine_error_last": float(cosine[:, -1].mean()),
            "imagine/recon_pixel_mse": float(recon.mean()),
        },
    }


def _csv(errors: dict[str, Any]) -> str:
    columns = ["step", "pixel_mse", "latent_cosine_error", "recon_pixel_mse"]
    rows = [columns, *zip(*(errors["per_step"][c] for c in columns))]
    return "".join(",".join(map(str, row)) + "\n" for row in rows)
