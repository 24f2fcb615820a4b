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

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict

from agents.collect import record_episodes
from agents.video import rollout_frames, write_video
from envs import make_env
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
from worldmodel.model import WorldModel
from worldmodel.replay import SequenceReplay
from worldmodel.visualize import (
    FrameDecoder,
    check_rollout_length,
    fit_decoder,
    latent_frame_pairs,
    masked_view,
    open_loop,
    own_decoder,
)

DECODER_PAIRS = 2048
"""(latent, frame) pairs drawn from the replay to fit a decoder."""


def decoder_for(model: WorldModel, cfg: Config, *, replay: SequenceReplay | None = None,
                episodes: list[TensorDict] | None = None, decoder: FrameDecoder | None = None,
                steps: int = 500, seed: int = 0, kind: str = "auto") -> FrameDecoder:
    """The decoder an imagined rollout is shown with.

    `decoder` None: the model's own when it predicts raw pixels (`kind="auto"` or `"own"`), else
    (or with `kind="fitted"`) a new one fitted for `steps` on frozen latents of the replay's frames (or
    of `episodes` when there is no replay). A fitted `decoder` given: fitted `steps` more (0: used as
    it is), e.g. to follow an encoder still training.
    """
    if kind not in ("auto", "own", "fitted"):
        raise ValueError(f"decoder={kind!r} is not valid: choose auto, own or fitted.")
    if decoder is None and kind != "fitted":
        decoder = own_decoder(model)
        if decoder is not None:
            return decoder
        if kind == "own":
            raise ValueError(f"this model has no viewable decoder of its own (objective={cfg.objective}, "
                             f"mask_target={cfg.mask_target}, norm_pix={cfg.norm_pix}): use decoder=auto or fitted.")
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
    return fit_decoder(cfg, latents, frames, steps=steps, seed=seed, device=_device(model), init=decoder)


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
            convention), e.g. from `agents.collect.record_episodes`; each needs `start + C + H` steps.
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
        Per-step values are means over episodes; `metrics` are scalars ready for a metrics logger.
    """
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"out={path.name}: the video must be a .mp4 or .gif file.")
    if not episodes:
        raise ValueError("no episodes to imagine.")
    if scale < 1 or fps < 1:
        raise ValueError(f"scale={scale} and fps={fps} must be at least 1.")
    for ep in episodes:
        check_rollout_length(len(ep["obs"]), context, horizon, start)
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
    _write_text(path.with_suffix(".json"), json.dumps(errors, indent=2))
    _write_text(path.with_suffix(".csv"), _csv(errors))
    return decoder, errors


class ImaginedVideos:
    """`on_evaluate` hook of the training loop: record one episode with the agent (exploration off),
    imagine it open loop from a few real frames, and write `videos/imagined_<step>.mp4` with its
    per-step errors. The decoder (fitted on frozen latents unless the model's own can show pixels)
    is kept and refined from one evaluation to the next."""

    def __init__(self, cfg: Config, agent, spec: ActionSpec, replay: SequenceReplay, videos: Path):
        self.cfg, self.agent, self.spec, self.replay, self.videos = cfg, agent, spec, replay, Path(videos)
        self.env = make_env(cfg.env, image_size=cfg.image_size, frame_stack=cfg.frame_stack,
                            action_repeat=cfg.action_repeat, seed=cfg.seed + 2)
        self.decoder: FrameDecoder | None = None

    def _policy(self, obs: torch.Tensor, first: bool) -> torch.Tensor:
        if first:
            self.agent.reset(torch.ones(1, dtype=torch.bool), eval=True)
        return self.agent.act(obs, eval=True)

    def __call__(self, step: int) -> dict[str, float]:
        episode = record_episodes(self.env, self.spec, 1, seed=self.cfg.seed + 3 + step, policy=self._policy)
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
        "per_step": {
            "step": list(range(1, horizon + 1)),
            "pixel_mse": pixel.mean(0).tolist(),
            "latent_cosine_error": cosine.mean(0).tolist(),
            "recon_pixel_mse": recon.mean(0).tolist(),
        },
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
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*(errors["per_step"][c] for c in columns)))
    return out.getvalue()


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _device(model: WorldModel) -> torch.device:
    return next(model.parameters()).device
