"""Looking at what a world model imagines: pixel decoders for its latents, open-loop rollouts, masked views.

    decoder = own_decoder(model)                             # the model's own, when its pixels are viewable
    if decoder is None:                                      # otherwise one fitted on frozen latents
        latents, frames = latent_frame_pairs(model, replay.sample(256)["obs"])
        decoder = fit_decoder(model.cfg, latents, frames)
    rollout = open_loop(model, episode, context=4, horizon=30, decoder=decoder)
    rollout.pixel_mse, rollout.latent_cosine_error          # (30,) each: error per imagined step

Pure computation, no files. A fitted decoder never shapes the representation: it learns from latents
computed under `torch.no_grad()` and the model's weights are only read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from tensordict import TensorDict
from torch import nn

from worldmodel.config import Config
from worldmodel.decoders import ConvDecoder
from worldmodel.encoders import preprocess
from worldmodel.history import pad_history
from worldmodel.masking import patchify, unpatchify
from worldmodel.model import WorldModel
from worldmodel.probe import episode_latents


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """`module` in eval mode inside the block, back in its previous mode after it (also on an error)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


@dataclass
class FrameDecoder:
    """Latents `(N, D)` (on any device) -> viewable frames `(N, 3, H, W)` float in [-0.5, 0.5]
    (`preprocess` scale) on the CPU.

    `kind` is "own" (the model's pixel decoder: pixel targets with `norm_pix=false`) or "fitted"
    (a `ConvDecoder` fitted afterwards on frozen latents). `fit_mse` is the fitted decoder's last
    training loss (None for "own").
    """

    net: nn.Module
    kind: Literal["own", "fitted"]
    fit_mse: float | None = None

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.to(_device(self.net))).float().clamp(-0.5, 0.5).cpu()

    @property
    def description(self) -> str:
        if self.kind == "own":
            return "own decoder (pixel targets)"
        return "decoder fitted on frozen latents (stop-gradient)"


class _ModelDecoder(nn.Module):
    """The world model's own `decode`, as a module (it holds the model only to call it)."""

    def __init__(self, model: WorldModel):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


class _MeanFrameDecoder(nn.Module):
    """A `ConvDecoder` predicting the difference from the mean training frame.

    Frames of control tasks are mostly a flat background; starting from the mean frame, the
    decoder spends its few fitting steps on what moves rather than on learning the background.
    """

    def __init__(self, net: ConvDecoder, mean: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z) + self.mean


def own_decoder(model: WorldModel) -> FrameDecoder | None:
    """The model's own decoder when it predicts viewable pixels (`mask_target=pixel`, `norm_pix=false`);
    None otherwise: no decoder at all, or one that predicts per-patch-normalised pixels."""
    if not model.has_decoder or model.cfg.norm_pix:
        return None
    return FrameDecoder(_ModelDecoder(model), "own")


@torch.no_grad()
def latent_frame_pairs(model: WorldModel, sequences: torch.Tensor | list[torch.Tensor],
                       chunk: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(latent, newest frame) of every window of `history` frames, the latents computed without gradient.

    Args:
        model: the world model (only read).
        sequences: `(B, S, 3, H, W)` uint8 (e.g. a replay sample's `obs`: every window of k frames
            gives a pair), or a list of episodes `(L, 3, H, W)` uint8 (every step gives a pair, its
            history padded with the first frame as the agent sees it).
        chunk: sequences encoded at once.

    Returns:
        latents `(N, D)` float32 and frames `(N, 3, H, W)` uint8, on the CPU.
    """
    device, k = _device(model), model.history
    latents, frames = [], []
    with eval_mode(model):
        if isinstance(sequences, torch.Tensor):
            if sequences.ndim != 5 or sequences.dtype != torch.uint8 or sequences.shape[1] < k:
                raise ValueError(f"sequences must be (B, S >= {k}, 3, H, W) uint8, got "
                                 f"{tuple(sequences.shape)} {sequences.dtype}.")
            for part in sequences.split(chunk):
                latents.append(rearrange(model.encode_sequence(part.to(device)).float().cpu(), "b t d -> (b t) d"))
                frames.append(rearrange(part[:, k - 1:], "b t c h w -> (b t) c h w"))
        else:
            for episode in sequences:
                latents.append(episode_latents(model.encode_sequence, episode, k, device))
                frames.append(episode)
    if not latents:
        raise ValueError("no frames to pair with latents.")
    return torch.cat(latents), torch.cat(frames)


def fit_decoder(cfg: Config, latents: torch.Tensor, frames: torch.Tensor, *, steps: int = 500,
                batch_size: int = 64, lr: float = 2e-3, seed: int = 0, device: torch.device | None = None,
                init: FrameDecoder | None = None) -> FrameDecoder:
    """Fit a `ConvDecoder` from frozen latents to frames by MSE in `preprocess` scale.

    The latents are detached data: nothing flows back into the model that produced them, so the
    decoder shows the representation without shaping it.

    Args:
        cfg: sizes (`latent_dim`, `image_size`, `enc_channels`, `enc_depth`, `enc_stem`).
        latents: `(N, D)` float, e.g. from `latent_frame_pairs`.
        frames: `(N, 3, H, W)` uint8, the frame each latent was computed for.
        steps: Adam steps; batch_size: pairs per step; lr: learning rate.
        seed: seeds initialisation and batch sampling.
        device: where to fit (default: the CPU).
        init: a fitted decoder to continue from (e.g. the previous evaluation's), else a fresh one.

    Returns:
        a `FrameDecoder` of kind "fitted", in eval mode, on `device`.
    """
    if latents.ndim != 2 or frames.ndim != 4 or len(latents) != len(frames) or frames.dtype != torch.uint8:
        raise ValueError(f"need latents (N, D) and frames (N, 3, H, W) uint8 of the same N, got "
                         f"{tuple(latents.shape)} and {tuple(frames.shape)} {frames.dtype}.")
    if steps < 0 or batch_size < 1:
        raise ValueError(f"steps={steps} must be >= 0 and batch_size={batch_size} >= 1.")
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    # Callers may sit under no_grad or inference_mode (an evaluation); the decoder trains regardless.
    with torch.inference_mode(False), torch.enable_grad():
        if init is not None:
            if init.kind != "fitted":
                raise ValueError("only a fitted decoder can be fitted further.")
            net = init.net
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net = _MeanFrameDecoder(
                    ConvDecoder(cfg.latent_dim, 3, cfg.image_size, cfg.enc_channels, cfg.enc_depth, cfg.enc_stem),
                    sum(preprocess(part).sum(0) for part in frames.split(256)) / len(frames))
        net = net.to(device).train()
        latents = latents.detach().float().clone()  # plain data: no graph back into the model
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        loss = torch.tensor(float("nan"))
        for _ in range(steps):
            index = torch.randint(len(latents), (min(batch_size, len(latents)),), generator=generator)
            target = preprocess(frames[index]).to(device)
            loss = F.mse_loss(net(latents[index].to(device)), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    net.eval()
    previous = init.fit_mse if init is not None else None
    return FrameDecoder(net, "fitted", float(loss.detach()) if steps else previous)


@dataclass
class Rollout:
    """Steps `0 .. C + H - 1` of one episode: C context steps (encoded from real frames), then H steps
    imagined open loop from the last context latent with the actions actually taken.

    Per step: `real` and `decoded` `(C + H, 3, H, W)` uint8, `latents` `(C + H, D)` (encoder latents
    for the context, imagined ones after), `recon_mse` `(C + H,)` (the decoder's error on the encoder's
    latent of the real frame: what the decoder alone gets wrong). Per imagined step k = 1 .. H:
    `pixel_mse` `(H,)` between the decoded imagined frame and the real one (pixels in [0, 1] units),
    `latent_cosine_error` `(H,)`: 1 - cos(imagined latent, target-encoder latent of the real frame),
    the quantity the dynamics is trained to match.
    """

    real: torch.Tensor
    decoded: torch.Tensor
    latents: torch.Tensor
    context: int
    pixel_mse: torch.Tensor
    latent_cosine_error: torch.Tensor
    recon_mse: torch.Tensor

    @property
    def horizon(self) -> int:
        return len(self.real) - self.context


def check_rollout_length(length: int, context: int, horizon: int, start: int = 0) -> None:
    """Raise a ValueError naming the fix unless an episode of `length` steps (the first `start` of
    them history only) holds `context + horizon` steps."""
    if context < 1 or horizon < 1:
        raise ValueError(f"context={context} and horizon={horizon} must both be at least 1.")
    if start + context + horizon > length:
        raise ValueError(f"context={context} + horizon={horizon} = {context + horizon} steps do not fit in an "
                         f"episode of {length - start} steps: lower horizon= (at most {length - start - context}) "
                         "or context=.")


@torch.no_grad()
def open_loop(model: WorldModel, episode: TensorDict, context: int, horizon: int, decoder: FrameDecoder,
              start: int = 0) -> Rollout:
    """Encode `context` real frames, then imagine `horizon` steps open loop with the actions taken.

    Args:
        model: the world model (only read).
        episode: `obs (L, 3, H, W)` uint8 and `action (L, A)` in the replay's convention (`action[t]`
            led to `obs[t]`), e.g. from `agents.episodes.record_episodes` or a replay slice.
        context, horizon: C >= 1 steps encoded from real frames, then H >= 1 imagined.
        decoder: turns latents into frames (`own_decoder` or `fit_decoder`).
        start: rows before it serve only as the encoder's history (a replay slice of k - 1 + C + H
            rows uses `start = k - 1`); at 0 the history is padded with the first frame.

    Returns:
        a `Rollout` of steps `start .. start + C + H - 1`, on the CPU.
    """
    obs, actions = episode["obs"], episode["action"]
    check_rollout_length(len(obs), context, horizon, start)
    device, k = _device(model), model.history
    steps = slice(start, start + context + horizon)
    with eval_mode(model):
        z = episode_latents(model.encode_sequence, obs, k, device)[steps]  # (C+H, D), as the agent sees them
        y = episode_latents(lambda f: model.encode_sequence(f, target=True), obs, k, device)[steps]
        taken = actions[start + context:start + context + horizon].float()  # led to steps C .. C+H-1
        imagined = model.imagine(z[context - 1][None].to(device), taken[None].to(device))[0].float().cpu()
    latents = torch.cat([z[:context], imagined])  # (C+H, D)

    real = obs[steps]
    target = preprocess(real)
    decoded, recon = decoder(latents), decoder(z)  # (C+H, 3, H, W) each
    return Rollout(
        real=real,
        decoded=to_uint8(decoded),
        latents=latents,
        context=context,
        pixel_mse=_frame_mse(decoded, target)[context:],
        latent_cosine_error=1.0 - F.cosine_similarity(imagined, y[context:], dim=-1),
        recon_mse=_frame_mse(recon, target),
    )


@dataclass
class MaskedView:
    """The masked objective at work on steps `0 .. S - 1`: `masked` `(S, 3, H, W)` uint8, the frames with
    hidden patches greyed out; `filled` `(S, 3, H, W)` uint8, the visible patches with the predicted
    ones in the hidden places; `hidden` `(S, L)` bool, True = hidden; `label` says how the hidden
    patches were drawn."""

    masked: torch.Tensor
    filled: torch.Tensor
    hidden: torch.Tensor
    label: str = "filled in"


@torch.no_grad()
def masked_view(model: WorldModel, episode: TensorDict, length: int, decoder: FrameDecoder | None = None,
                start: int = 0, seed: int = 0) -> MaskedView:
    """Hide parts of steps `start .. start + length - 1` as the masked objective does and show what the
    model fills in (its filter through the dynamics sees the masked frames and the actions).

    With pixel targets the model's own decoder predicts the hidden patches; normalised per patch
    (`norm_pix=true`) they are shown with the real patch's mean and spread, as MAE shows them. With
    latent targets the predicted target latents go through `decoder` (a fitted one), which is needed then.

    Args:
        model: a world model with a masked objective (only read).
        episode: `obs (L, 3, H, W)` uint8, `action (L, A)`; `start`, history as in `open_loop`.
        length: steps to show.
        seed: seeds the mask.
    """
    cfg, k = model.cfg, model.history
    if not model.uses_masked:
        raise ValueError(f"objective={cfg.objective} has no masked prediction to show.")
    if cfg.mask_target == "latent" and decoder is None:
        raise ValueError("a latent-target model needs a decoder to show its masked predictions.")
    obs, actions = episode["obs"], episode["action"]
    if length < 1 or start + length > len(obs):
        raise ValueError(f"{length} steps from step {start} do not fit in an episode of {len(obs)} steps.")
    device = _device(model)
    padded = pad_history(obs, k)  # history padded as the agent sees it
    frames = padded[start:start + length + k - 1][None]  # (1, length + k - 1, 3, H, W)
    taken = actions[start:start + length].float()[None]
    generator = torch.Generator().manual_seed(seed)
    mask = model.sample_mask(1, frames.shape[1], generator).to(device)
    with eval_mode(model):
        predicted = model.fill_masked(frames.to(device), taken.to(device), mask)[0]  # (length, D)
        if cfg.mask_target == "pixel":
            pixels = model.decode(predicted).float().cpu()  # (length, 3, H, W)
        else:
            pixels = decoder(predicted)

    hidden = mask[0, k - 1:].cpu()  # (length, L)
    real = preprocess(frames[0, k - 1:])
    patches, predicted_patches = patchify(real, cfg.patch_size), patchify(pixels, cfg.patch_size)
    label = "filled in" if cfg.mask_target == "pixel" else "filled in (fitted decoder)"
    if cfg.mask_target == "pixel" and cfg.norm_pix:
        label = "filled in (real patch mean/std)"
        mean = patches.mean(-1, keepdim=True)
        std = patches.var(-1, keepdim=True, correction=0).add(1e-6).sqrt()
        predicted_patches = predicted_patches * std + mean
    hide = rearrange(hidden, "t l -> t l 1")
    filled = torch.where(hide, predicted_patches, patches)
    grey = torch.where(hide, torch.zeros_like(patches), patches)
    return MaskedView(masked=to_uint8(unpatchify(grey, cfg.patch_size)),
                      filled=to_uint8(unpatchify(filled, cfg.patch_size).clamp(-0.5, 0.5)), hidden=hidden,
                      label=label)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Frames in `preprocess` scale ([-0.5, 0.5] float) -> uint8 [0, 255]."""
    return ((x.float() + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)


def _frame_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`(N, 3, H, W)` twice -> `(N,)` mean squared error per frame."""
    return (x - target).square().mean(dim=(1, 2, 3))


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


__all__ = ["FrameDecoder", "MaskedView", "Rollout", "check_rollout_length", "eval_mode", "fit_decoder",
           "latent_frame_pairs", "masked_view", "open_loop", "own_decoder", "to_uint8"]
