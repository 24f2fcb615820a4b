"""The world model: encoder, latent dynamics, heads and self-supervised objectives.

    model = WorldModel(cfg, 1)   # action: an ActionSpec, or a continuous action dim
    z = model.encode(obs)                       # (N, 3k, H, W) uint8 -> (N, D)
    latents = model.imagine(z, actions)         # (N, H, A) -> (N, H, D)
    r = model.reward(z, actions[:, 0])          # (N,)
    terms, metrics = model.loss(batch)          # batch: replay TensorDict (B, T + k - 1)

Public methods are verbs; submodules are private. Outside code never touches them, so the
encoder, the dynamics or a head can change without the planner or the agent noticing.

The losses (`objective=masked|contrastive|both`, weights from the config):

- **masked**: hide whole frames and/or space-time tubes of patches of the observation sequence;
  encode the masked frames, run a filter through the latent dynamics
  (h_t = fuse(z~_t, dynamics(h_{t-1}, a_t))), so hidden frames are inferred from visible context
  and actions; predict the hidden pixels (normalised per patch, MAE) or the target encoder's latents
  (cosine, MLR). Only hidden parts count.
- **contrastive**: roll the dynamics open loop K steps from every z_t with the actions taken;
  InfoNCE between the projected predictions z^_{t+k} and the EMA target encoder's embeddings of the
  real frames t+k; every other (sequence, time) of the batch is a negative.
- always: **consistency** (imagined vs target-encoded future latents, MSE), **reward** (symlog MSE)
  and **termination** (BCE), predicted by the dynamics network along with each imagined step; **value**
  (TD(lambda) on real transitions, target value head) and, with `policy_prior`, **policy** (imitating the
  actions taken). With `value_of=policy`, the value is Q of the policy prior instead (one-step TD, its
  action at the next step, two heads) and the policy maximises it, as in TD-MPC2. `reward_bins` and
  `value_bins` turn the reward's and the value's symlog regression into two-hot classification.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from tensordict import TensorDict
from torch import nn

from worldmodel.actions import ActionSpec
from worldmodel.augment import appearance, two_views
from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.config import Config, ConfigError
from worldmodel.decoders import ConvDecoder
from worldmodel.dynamics import LatentDynamics
from worldmodel.encoders import (
    ConvEncoder,
    PatchEncoder,
    channels_last_frames,
    preprocess,
)
from worldmodel.layers import latent_norm, mlp
from worldmodel.masking import apply_pixel_mask, frame_mask, tube_mask
from worldmodel.objectives import (
    cosine_loss,
    excluded_keys,
    info_nce,
    lambda_returns,
    latent_mse,
    masked_mean,
    n_step_returns,
    normalized_patch_targets,
    patch_errors,
    rollout_positives,
    symexp,
    symlog,
    two_hot_cross_entropy,
    two_hot_loss,
    two_hot_mean,
    two_hot_support,
)

# Config keys that define the encoder's input and architecture: an encoder file records them,
# and loading it into a model that differs in any of them is refused.
ENCODER_KEYS = ("encoder", "image_size", "history", "latent_dim", "enc_channels", "enc_depth", "enc_stem",
                "enc_act", "patch_size", "vit_width", "vit_depth", "latent_norm", "simnorm_group", "stack_as")
ENCODER_DEFAULTS = {"latent_norm": "layer", "simnorm_group": 8, "stack_as": "frames", "enc_act": "silu"}
"""Values of the `ENCODER_KEYS` that encoders saved before the key existed were built with."""


def encoder_config_of(config: dict[str, Any]) -> dict[str, Any]:
    """The `ENCODER_KEYS` of a saved config or encoder config, a key it predates at `ENCODER_DEFAULTS`."""
    return {key: config.get(key, ENCODER_DEFAULTS.get(key)) for key in ENCODER_KEYS}


class WorldModel(nn.Module):
    """Args:
        cfg: the config (sizes, objective, loss weights).
        action: an `ActionSpec`, or an int for continuous actions of that size.
    """

    def __init__(self, cfg: Config, action: ActionSpec | int):
        super().__init__()
        self.action_spec = action if isinstance(action, ActionSpec) else ActionSpec("continuous", int(action))
        self.cfg, self.action_dim = cfg, self.action_spec.dim
        d, k, size = cfg.latent_dim, cfg.history, cfg.image_size
        self._encoder = _make_encoder(cfg)
        self._target_encoder = _frozen_copy(self._encoder)
        # The reward's logits: one (symlog regression) or reward_bins (two-hot classes); they come from
        # the dynamics MLP's output beside the termination logit, or from a reward MLP of their own.
        self._reward_dim = cfg.reward_bins or 1
        self._shared_reward = cfg.reward_head == "shared"
        self._dynamics = LatentDynamics(d, self.action_dim, cfg.hidden_dim, _latent_norm(cfg),
                                        outcome_dim=1 + (self._reward_dim if self._shared_reward else 0))
        if not self._shared_reward:
            self._reward = mlp(d + self.action_dim, cfg.hidden_dim, self._reward_dim)
        if cfg.reward_bins:  # the bins' centres, made once (not saved: the config rebuilds them)
            self.register_buffer("_reward_support", two_hot_support(cfg.reward_bins), persistent=False)
        self.learns_q = cfg.value_of == "policy"
        value_dim = cfg.value_bins or 1  # the symlog value, or value_bins two-hot logits
        if self.learns_q:  # Q(z, a), two heads (clipped double Q); the planner reads Q(z, policy(z))
            self._q = nn.ModuleList(mlp(d + self.action_dim, cfg.hidden_dim, value_dim) for _ in range(2))
            self._target_q = _frozen_copy(self._q)
        else:  # V(z) of the data's behaviour, by TD(lambda), used at the planning horizon
            self._value = mlp(d, cfg.hidden_dim, value_dim)
            self._target_value = _frozen_copy(self._value)
        if cfg.value_bins:
            self.register_buffer("_value_support", two_hot_support(cfg.value_bins), persistent=False)
        if cfg.policy_prior:
            self._policy = mlp(d, cfg.hidden_dim, self.action_dim)
        self.uses_masked = cfg.objective in ("masked", "both")
        self.uses_contrastive = cfg.objective in ("contrastive", "both")
        if self.uses_masked:
            self._fuse = mlp(2 * d, cfg.hidden_dim, d, layers=1, out_norm=_latent_norm(cfg))  # a latent, as z
            if cfg.mask_target == "pixel":
                self._decoder = ConvDecoder(d, 3, size, cfg.enc_channels, cfg.enc_depth, cfg.enc_stem)
            else:
                self._mask_predictor = mlp(d, cfg.hidden_dim, d, layers=1)
        if self.uses_contrastive:
            self._projector = mlp(d, cfg.hidden_dim, cfg.proj_dim, layers=1)
            self._target_projector = _frozen_copy(self._projector)
            self._predictor = mlp(cfg.proj_dim, cfg.hidden_dim, cfg.proj_dim, layers=1)
            self._log_temperature = nn.Parameter(torch.tensor(math.log(cfg.temperature)),
                                                 requires_grad=cfg.learn_temperature)
        if cfg.novelty > 0:  # random network distillation on latents: training plans' exploration bonus
            self._novelty_target = mlp(d, cfg.hidden_dim, NOVELTY_FEATURES).requires_grad_(False)
            self._novelty_predictor = mlp(d, cfg.hidden_dim, NOVELTY_FEATURES)
            self.register_buffer("_novelty_scale", torch.zeros(()))  # running mean error on replayed latents
        self.history = k

    # --- verbs ---------------------------------------------------------------------------
    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """obs `(N, 3k, H, W)` uint8 (k = history stacked frames, oldest first) -> z `(N, D)`."""
        expected = (3 * self.history, self.cfg.image_size, self.cfg.image_size)
        if obs.dtype != torch.uint8 or obs.ndim != 4 or tuple(obs.shape[1:]) != expected:
            raise ValueError(f"encode expects (N, {expected[0]}, {expected[1]}, {expected[2]}) uint8 stacks of "
                             f"history={self.history} frames, got {tuple(obs.shape)} {obs.dtype}.")
        return self._encoder(preprocess(obs))

    def encode_sequence(self, frames: torch.Tensor, target: bool = False) -> torch.Tensor:
        """frames `(B, S, 3, H, W)` uint8 -> z `(B, S - k + 1, D)`, one latent per full window of k frames.

        `target=True` uses the EMA target encoder (no gradient).
        """
        return self._encode_windows(preprocess(channels_last_frames(frames)), target=target)

    def _encode_windows(self, x: torch.Tensor, target: bool = False, patch_mask: torch.Tensor | None = None
                        ) -> torch.Tensor:
        """x `(B, S, 3, H, W)` float (preprocessed) -> `(B, S - k + 1, D)`."""
        b = x.shape[0]
        encoder = self._target_encoder if target else self._encoder
        with torch.set_grad_enabled(torch.is_grad_enabled() and not target):
            if patch_mask is not None and isinstance(encoder, PatchEncoder):
                z = encoder.forward_sequence(x, rearrange(patch_mask, "b t l -> (b t) l"))
            else:
                z = encoder.forward_sequence(x)
        return rearrange(z, "(b t) d -> b t d", b=b)

    def step(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One latent step: z `(N, D)`, action `(N, A)` -> `(N, D)`."""
        return self._dynamics(z, action)

    def imagine(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Open-loop rollout: z0 `(B, D)`, actions `(B, H, A)` -> latents `(B, H, D)` (z_1 .. z_H)."""
        return self._dynamics.imagine(z0, actions)

    def transition(self, z: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Taking `action (..., A)` in `z (..., D)`: the next latent `(..., D)`, the predicted reward
        `(...)` in env units and the probability `(...)` that the step ends the episode. One call:
        what the planner uses for every imagined step."""
        latent, out = self._dynamics.transition(z, action)
        reward, ends = self._outcome(z, action, out)
        reward = two_hot_mean(reward, self._reward_support) if self.cfg.reward_bins else reward.squeeze(-1)
        return latent, symexp(reward), torch.sigmoid(ends)

    def _outcome(self, z: torch.Tensor, action: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step from `z (..., D)` by `action (..., A)`, whose dynamics outcome logits are `out`: its
        reward logits `(..., R)` (R = reward_bins, or 1: the symlog reward) and termination logit `(...)`,
        both fp32."""
        if self._shared_reward:
            return out[..., :-1].float(), out[..., -1].float()
        reward = self._reward(torch.cat([z, action.to(z.dtype)], dim=-1))
        return reward.float(), out[..., 0].float()

    def reward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Predicted reward for taking `action (..., A)` in `z (..., D)`: `(...)`, in env units."""
        return self.transition(z, action)[1]

    def termination(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Probability that taking `action (..., A)` in `z (..., D)` ends the episode: `(...)`."""
        return self.transition(z, action)[2]

    def value(self, z: torch.Tensor, optimism: float = 0.0) -> torch.Tensor:
        """State value `(...)` of `z (..., D)`, in env units (learned by the agent): V(z), or with
        `value_of=policy` Q(z, policy(z)), the mean of the two Q heads, plus `optimism` times half their
        spread (in symlog space; `Config.optimism`)."""
        if self.learns_q:
            q = self._q_values(self._q, z, self.policy(z))  # (2, ...) symlog
            if optimism:
                return symexp(q.mean(0) + optimism * (q[0] - q[1]).abs() / 2)
            return symexp(q.mean(0))
        if optimism:
            raise ValueError("optimism reads the spread of the two Q heads; this model learns one value head "
                             "(value_of=data).")
        return symexp(self._symlog_value(self._value(z)))

    def _symlog_value(self, out: torch.Tensor) -> torch.Tensor:
        """A value head's output `(..., V)` -> its symlog value `(...)` fp32: the one output, or the
        expectation of the value_bins logits over their bins."""
        return two_hot_mean(out, self._value_support) if self.cfg.value_bins else out.squeeze(-1).float()

    def _q_values(self, heads: nn.ModuleList, z: torch.Tensor, action: torch.Tensor, frozen: bool = False,
                  logits: bool = False) -> torch.Tensor:
        """Both Q heads (symlog space) at `z (..., D)`, `action (..., A)`: `(2, ...)` fp32, or with `logits`
        their raw outputs `(2, ..., V)`. `frozen`: the heads' weights act as constants, so a loss through
        them moves only what made `action`."""
        x = torch.cat([z, action.to(z.dtype)], dim=-1)
        values = []
        for head in heads:
            if frozen:
                out = torch.func.functional_call(head, {k: v.detach() for k, v in head.named_parameters()}, (x,))
            else:
                out = head(x)
            values.append(out if logits else self._symlog_value(out))
        return torch.stack(values)

    def policy(self, z: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
        """The policy prior's action vector for `z (N, D)`: `(N, A)` in [-1, 1], or one-hot (argmax, or
        sampled from the softmax when `sample`: drawn from `generator`, or, when standard Gumbel
        `noise (N, A)` is given, argmax(logits + noise), which lets a caller give every row its own
        random stream)."""
        out = self._policy(z).float()
        if self.action_spec.kind == "continuous":
            return torch.tanh(out)
        if not sample:
            index = out.argmax(-1)
        elif noise is None:
            index = torch.multinomial(torch.softmax(out, -1), 1, generator=generator).squeeze(-1)
        else:
            index = (out + noise).argmax(-1)
        return F.one_hot(index, self.action_dim).float()

    def novelty(self, z: torch.Tensor) -> torch.Tensor:
        """How unlike the replayed latents `z (..., D)` is: the RND predictor's error over its running mean
        on replayed latents, `(...)` fp32: about 1, or below as the error falls faster than its running mean
        follows, for a typical replayed latent. Needs `Config.novelty`."""
        return self._novelty_error(z) / self._novelty_scale.clamp_min(1e-12)

    def _novelty_error(self, z: torch.Tensor) -> torch.Tensor:
        """`(..., D)` -> `(...)` fp32: squared error of the predictor against the fixed random network."""
        return (self._novelty_predictor(z).float() - self._novelty_target(z).float()).square().mean(-1)

    @property
    def has_novelty(self) -> bool:
        return hasattr(self, "_novelty_predictor")

    @property
    def has_policy(self) -> bool:
        return hasattr(self, "_policy")

    @property
    def has_decoder(self) -> bool:
        return hasattr(self, "_decoder")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z `(N, D)` -> frames `(N, 3, H, W)` float: pixels in [-0.5, 0.5], or per-patch-normalised
        pixels when trained with `norm_pix=true` (MAE's targets: structure, not absolute colour)."""
        if not self.has_decoder:
            raise ValueError("this model has no pixel decoder (objective without pixel targets); fit one on "
                             "frozen latents instead.")
        return self._decoder(z)

    def sample_mask(self, batch: int, frames: int, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None) -> torch.Tensor:
        """A mask as the masked objective draws it (`mask_type`, `mask_ratio`, `tube_len`,
        `frame_mask_ratio`) for `batch` sequences of `frames` frames: `(B, S, L)` bool, True = hidden,
        L = (image_size / patch_size)² patches per frame."""
        cfg = self.cfg
        grid = cfg.image_size // cfg.patch_size
        mask = torch.zeros(batch, frames, grid * grid, dtype=torch.bool, device=device)
        if cfg.mask_type in ("tube", "both"):
            mask |= tube_mask(batch, frames, grid, cfg.mask_ratio, cfg.tube_len, generator, device=device)
        if cfg.mask_type in ("frame", "both"):
            mask |= frame_mask(batch, frames, cfg.frame_mask_ratio, generator, device=device)[..., None]
        return mask

    def fill_masked(self, frames: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the masked objective infers of every window from masked frames and the actions.

        Args:
            frames: `(B, S, 3, H, W)` uint8, S = T + k - 1.
            actions: `(B, T, A)`, action t led to window t's newest frame.
            mask: `(B, S, L)` bool, True = hidden (e.g. from `sample_mask`).

        Returns:
            `(B, T, D)`: with pixel targets, the filtered latents the decoder reads (pass them to
            `decode`); with latent targets, the predicted target-encoder latents.
        """
        if not self.uses_masked:
            raise ValueError(f"objective={self.cfg.objective} has no masked prediction to show.")
        h = self._filter_masked(preprocess(frames), actions, mask)
        return h if self.cfg.mask_target == "pixel" else self._mask_predictor(h)

    def _filter_masked(self, x: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x `(B, S, 3, H, W)` preprocessed, actions `(B, T, A)`, mask `(B, S, L)` -> filtered latents `(B, T, D)`."""
        z_masked = self._encode_windows(apply_pixel_mask(x, mask, self.cfg.patch_size),
                                        patch_mask=mask[:, self.history - 1:])
        # Filter through the dynamics: context from the past and the actions fills what is hidden.
        states, prior = [], z_masked[:, 0]
        for t in range(z_masked.shape[1]):
            if t > 0:
                prior = self._dynamics(states[-1], actions[:, t])
            states.append(self._fuse(torch.cat([z_masked[:, t], prior], dim=-1)))
        return torch.stack(states, dim=1)

    def parameters_of(self, part: str):
        """Parameters of one part ('encoder' or 'rest'), e.g. for a separate encoder learning rate."""
        encoder = set(id(p) for p in self._encoder.parameters())
        for p in self.parameters():
            if p.requires_grad and ((id(p) in encoder) == (part == "encoder")):
                yield p

    # --- training ------------------------------------------------------------------------
    def forward(self, batch: TensorDict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The loss terms (see `loss`): `forward` is what DistributedDataParallel and torch.compile wrap."""
        return self.loss(batch)

    def loss(self, batch: TensorDict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Named loss terms and extra metrics from a replay batch of `(B, T + k - 1)` frames."""
        frames, actions, rewards, terminated = self._aligned(batch)
        x = preprocess(channels_last_frames(frames))  # once, shared by every encoder pass
        if self.cfg.augment == "shift":  # the online and target encoders see independently shifted views
            x, x_target = two_views(x, self.cfg.shift_pad)
        else:
            x_target = x
        x_clean = x  # the masked objective's pixel targets: the online view before its recolouring
        # the online view only (the target encoder sees x_target), on appearance_share of the sequences
        x = appearance(x, self.cfg.appearance, share=self.cfg.appearance_share)
        z = self._encode_windows(x)  # (B, T, D)
        y = self._encode_windows(x_target, target=True)  # (B, T, D), no gradient
        imagined, reward_logits, end_logits = self._rollout(z, actions)
        terms = {"consistency": self._consistency_loss(imagined, y),
                 "reward": self._reward_loss(reward_logits, rewards),
                 "termination": self._termination_loss(end_logits, terminated)}
        metrics = self._spread(z)
        if self.uses_contrastive:
            terms["contrastive"], metrics["contrastive_accuracy"], metrics["temperature"] = (
                self._contrastive_loss(imagined, y))
        if self.uses_masked:
            terms["masked"], metrics["masked_fraction"] = self._masked_loss(x, actions, y, x_clean)
        if self.learns_q:
            terms["value"], value_metrics = self._q_loss(z, actions, rewards, terminated)
        else:
            terms["value"], value_metrics = self._value_loss(z, rewards, terminated, imagined)
        metrics.update(value_metrics)
        if self.has_policy:
            terms["policy"] = self._policy_q_loss(z) if self.learns_q else self._policy_loss(z, actions)
        if self.has_novelty:
            terms["novelty"], novelty_metrics = self._novelty_loss(z, imagined)
            metrics.update(novelty_metrics)
        return terms, metrics

    @staticmethod
    @torch.no_grad()
    def _spread(z: torch.Tensor) -> dict[str, torch.Tensor]:
        """How spread out the latents `z (B, T, D)` are, per dimension over the batch's B*T latents:
        the mean and the smallest standard deviation. A collapsing representation (every frame the
        same latent) drives both towards 0, whatever the losses say."""
        std = rearrange(z.float(), "b t d -> (b t) d").std(dim=0)
        return {"latent_std_mean": std.mean(), "latent_std_min": std.min()}

    def _aligned(self, batch: TensorDict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A replay batch, its steps lined up with the windows of k frames: frames `(B, T + k - 1, 3, H, W)`
        uint8, then actions `(B, T, A)`, rewards `(B, T)` and terminated `(B, T)` float, where step t is
        what led to window t's newest frame."""
        k, horizon = self.history, self.cfg.model_horizon
        frames = batch["obs"]
        actions = batch["action"][:, k - 1:]
        rewards = batch["reward"][:, k - 1:]
        terminated = batch["terminated"][:, k - 1:].float()
        t_len = actions.shape[1]
        if t_len <= horizon:
            raise ValueError(f"sequences of {frames.shape[1]} frames give T={t_len} steps; need T > model_horizon={horizon}.")
        return frames, actions, rewards, terminated

    def _rollout(self, z: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Open-loop rollouts of K steps from every start s = 0 .. S-1 (S = T - K), all at once, with the
        actions taken; shared by every term that reads imagined steps.

        Args:
            z: `(B, T, D)` encoded latents.
            actions: `(B, T, A)`, action t led to step t.

        Returns:
            imagined `(B, S, K, D)`: z^_{s+1..s+K}; reward logits `(B, S, K, R)` and termination logits
            `(B, S, K)`, fp32, predicted for the step into s+k (see `_outcome`).
        """
        horizon = self.cfg.model_horizon
        step_actions = _ahead(actions, horizon)  # (B, S, K, A): the action taken on step k
        start = z[:, :actions.shape[1] - horizon]
        latent, imagined, outs = start, [], []
        for j in range(horizon):
            latent, out = self._dynamics.transition(latent, step_actions[:, :, j])
            imagined.append(latent)
            outs.append(out)
        imagined = torch.stack(imagined, dim=2)
        # the latent each step leaves (what a reward MLP reads): z_s, then the imagined ones
        before = start.unsqueeze(2) if self._shared_reward else torch.cat([start.unsqueeze(2), imagined[:, :, :-1]], 2)
        return imagined, *self._outcome(before, step_actions, torch.stack(outs, dim=2))

    def _consistency_loss(self, imagined: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """imagined `(B, S, K, D)` vs the target encoder's latents y `(B, T, D)` of the same steps: `()`."""
        return latent_mse(imagined, _ahead(y, self.cfg.model_horizon))

    def _reward_loss(self, predicted: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        """Reward logits `(B, S, K, R)` from `_rollout` vs the rewards `(B, T)` received: symlog MSE, or
        two-hot cross-entropy with reward_bins: `()`."""
        target = symlog(_ahead(rewards, self.cfg.model_horizon).float())
        if self.cfg.reward_bins:
            return two_hot_loss(predicted, target)
        return F.mse_loss(predicted.squeeze(-1), target)

    def _termination_loss(self, logits: torch.Tensor, terminated: torch.Tensor) -> torch.Tensor:
        """Termination logits `(B, S, K)` vs terminated `(B, T)` float: BCE `()`."""
        return F.binary_cross_entropy_with_logits(logits, _ahead(terminated, self.cfg.model_horizon))

    def _contrastive_loss(self, imagined: torch.Tensor, y: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """InfoNCE of the projected imagined `(B, S, K, D)` against the projected target latents y
        `(B, T, D)` of the whole batch: loss `()`, top-1 accuracy `()` and the temperature `()` (detached)."""
        queries = self._predictor(self._projector(imagined))
        with torch.no_grad():
            keys = self._target_projector(y)
        b, starts, horizon = imagined.shape[:3]
        positives = rollout_positives(b, starts, horizon, y.shape[1], device=y.device)
        temperature = self._log_temperature.exp()
        excluded = excluded_keys(self.cfg.contrastive_negatives, positives, y.shape[1], b * y.shape[1])
        loss, accuracy = info_nce(rearrange(queries, "b s k p -> (b s k) p"), rearrange(keys, "b t p -> (b t) p"),
                                  positives, temperature, excluded)
        return loss, accuracy, temperature.detach()

    def _value_loss(self, z: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, imagined: torch.Tensor
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Value of the data's (the agent's) behaviour, by TD(lambda) on real transitions.

        Args:
            z: `(B, T, D)` encoded latents; detached here unless `value_grad`: by default the value
                head learns from the representation without shaping it.
            rewards, terminated: `(B, T)`, as from `_aligned`.
            imagined: `(B, S, K, D)` from `_rollout`, used with `value_on_imagined`.

        Returns:
            loss `()` and metrics: `value_target_mean`, and `value_imagined_loss` with `value_on_imagined`.
        """
        cfg, latent = self.cfg, z if self.cfg.value_grad else z.detach()
        with torch.no_grad():
            next_values = symexp(self._symlog_value(self._target_value(latent[:, 1:])))
            targets = lambda_returns(rewards[:, 1:].float(), next_values, terminated[:, 1:],
                                     cfg.discount, cfg.td_lambda)
        if cfg.value_bins:
            loss = two_hot_loss(self._value(latent[:, :-1]), symlog(targets))
        else:
            loss = F.mse_loss(self._value(latent[:, :-1]).squeeze(-1).float(), symlog(targets))
        metrics: dict[str, torch.Tensor] = {}
        if cfg.value_on_imagined:
            on_imagined = self._value_on_imagined_loss(imagined, targets)
            metrics["value_imagined_loss"] = on_imagined.detach()
            loss = (loss + on_imagined) / 2
        metrics["value_target_mean"] = targets.mean()
        return loss, metrics

    def _value_on_imagined_loss(self, imagined: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The planner reads the value at the end of imagined rollouts, whose latents drift from the
        encoded ones; fit it there too: each imagined z^_{s+k} of `(B, S, K, D)` (detached) gets the
        TD(lambda) target `(B, T - 1)` of the real step it stands for. The last step has no target
        (T-1 targets for T steps) and is left out. Returns `()`."""
        horizon = self.cfg.model_horizon
        padded, valid = F.pad(targets, (0, 1)), F.pad(torch.ones_like(targets), (0, 1))
        out, target = self._value(imagined.detach()), symlog(_ahead(padded, horizon))  # (B, S, K, V), (B, S, K)
        if self.cfg.value_bins:
            errors = two_hot_cross_entropy(out, target)
        else:
            errors = (out.squeeze(-1).float() - target).square()
        errors = errors * _ahead(valid, horizon)
        return errors.sum() / _ahead(valid, horizon).sum()

    def _q_loss(self, z: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Q of the policy prior, by n-step TD on real transitions (`value_of=policy`, n = `q_steps`): both
        heads' Q(z_t, a) for the action a taken at step t (action t+1) against r_{t+1} + gamma (1 - terminated_{t+1})
        (... + gamma^(n-1) ... min_i Q_target_i(z_{t+n}, policy(z_{t+n}))), in symlog space. n = 1 is
        TD-MPC2's one-step target; n > 1 (DrQ-v2, MR.Q: 3) carries the return n steps per update, at the
        cost of n - 1 steps of the replay's behaviour inside the target.

        Args:
            z: `(B, T, D)` encoded latents; detached unless `value_grad`, as for the value of the data.
            actions: `(B, T, A)`; rewards, terminated: `(B, T)`, as from `_aligned`.

        Returns:
            loss `()` (both heads) and metrics: `value_target_mean`, and `q_spread`, half the heads'
            mean disagreement (symlog), the scale `optimism` multiplies.
        """
        latent, n = (z if self.cfg.value_grad else z.detach()), self.cfg.q_steps
        with torch.no_grad():
            following = self.policy(latent[:, 1:])
            next_q = symexp(self._q_values(self._target_q, latent[:, 1:], following).min(0).values)
            targets = n_step_returns(rewards[:, 1:].float(), next_q, terminated[:, 1:], self.cfg.discount, n)
        starts = targets.shape[1]  # T - n: the steps whose n following steps are in the sequence
        if self.cfg.value_bins:
            out = self._q_values(self._q, latent[:, :starts], actions[:, 1:starts + 1], logits=True)  # (2, B, T - n, V)
            predicted = self._symlog_value(out).detach()
            loss = two_hot_loss(out, symlog(targets).expand_as(predicted))
        else:
            predicted = self._q_values(self._q, latent[:, :starts], actions[:, 1:starts + 1])  # (2, B, T - n)
            loss = (predicted - symlog(targets)).square().mean()
        spread = (predicted[0] - predicted[1]).detach().abs().mean() / 2  # what optimism=1 adds, on replayed steps
        return loss, {"value_target_mean": targets.mean(), "q_spread": spread}

    def _policy_q_loss(self, z: torch.Tensor) -> torch.Tensor:
        """The policy prior maximises Q (`value_of=policy`): minus the mean of both heads' Q, with the heads
        held fixed, at its own action for z `(B, T, D)` (detached), in symlog space: `()`. Continuous:
        Q(z, policy(z)); discrete: the Q of every action, weighted by the prior's softmax."""
        latent = z.detach()
        out = self._policy(latent).float()
        if self.action_spec.kind == "continuous":
            return -self._q_values(self._q, latent, torch.tanh(out), frozen=True).mean()
        a, lead = self.action_dim, latent.shape[:-1]
        every = torch.eye(a, device=z.device).expand(*lead, a, a)  # (B, T, A, A): each action, one-hot
        states = latent[..., None, :].expand(*lead, a, latent.shape[-1])  # (B, T, A, D)
        q = self._q_values(self._q, states, every, frozen=True).mean(0)  # (B, T, A)
        return -(torch.softmax(out, -1) * q).sum(-1).mean()

    def _policy_loss(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The policy prior imitates what the agent did: from z `(B, T, D)` (detached, as for the value),
        action t+1 of actions `(B, T, A)` was taken at step t. MSE (continuous) or cross-entropy `()`."""
        out = self._policy(z.detach()[:, :-1]).float()
        taken = actions[:, 1:].float()
        if self.action_spec.kind == "continuous":
            return F.mse_loss(torch.tanh(out), taken)
        return F.cross_entropy(rearrange(out, "b t a -> (b t) a"), rearrange(taken.argmax(-1), "b t -> (b t)"))

    def _novelty_loss(self, z: torch.Tensor, imagined: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The RND predictor learns the fixed random network on the encoded latents z `(B, T, D)`, detached
        (novelty does not shape the representation); in training mode the running mean of its error, the
        scale `novelty` divides by, moves 1% towards this batch's (it starts at the first batch's).

        Returns:
            loss `()` and metrics: `novelty_error`, the batch's mean error, and `novelty_imagined`, the
            mean novelty of the dynamics' imagined latents `(B, S, K, D)`: well above 1, the planner's
            bonus rewards the model's own drift off the replayed latents rather than unseen states.
        """
        error = self._novelty_error(z.detach())
        with torch.no_grad():
            mean = error.mean()
            if self.training:
                scale = self._novelty_scale
                scale.copy_(torch.where(scale > 0, scale.lerp(mean, 0.01), mean))
            imagined_novelty = self.novelty(imagined.detach()).mean()
        return error.mean(), {"novelty_error": mean, "novelty_imagined": imagined_novelty}

    def _masked_loss(self, x: torch.Tensor, actions: torch.Tensor, y: torch.Tensor,
                     pixels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x `(B, S, 3, H, W)` preprocessed frames the encoder sees, actions `(B, T, A)`, targets y `(B, T, D)`,
        pixels `(B, S, 3, H, W)` the frames whose pixels are predicted (default x; the clean view under
        appearance augmentation) -> loss `()` and the fraction hidden `()` (detached). Draws its mask
        from the global generator."""
        cfg, k = self.cfg, self.history
        b, s = x.shape[:2]
        mask = self.sample_mask(b, s, device=x.device)  # (B, S, L), True = hidden
        hidden = mask[:, k - 1:]  # (B, T, L): what is hidden of each window's newest frame
        h = self._filter_masked(x, actions, mask)  # (B, T, D)

        if cfg.mask_target == "pixel":
            predicted = rearrange(self._decoder(rearrange(h, "b t d -> (b t) d")), "(b t) c hh ww -> b t c hh ww", b=b)
            newest = (x if pixels is None else pixels)[:, k - 1:]
            target = normalized_patch_targets(newest, cfg.patch_size) if cfg.norm_pix else newest
            loss = masked_mean(patch_errors(predicted, target, cfg.patch_size), hidden)
        else:
            weight = hidden.float().mean(dim=-1)  # fraction hidden; fully visible frames do not count
            loss = cosine_loss(self._mask_predictor(h), y, weight)
        return loss, hidden.float().mean().detach()

    def loss_weights(self) -> dict[str, float]:
        """Declared weight of every term `loss` returns for this objective."""
        weights = {"consistency": self.cfg.consistency_coef, "reward": self.cfg.reward_coef,
                   "termination": self.cfg.termination_coef, "value": self.cfg.value_coef}
        if self.has_policy:
            weights["policy"] = self.cfg.policy_coef
        if self.uses_contrastive:
            weights["contrastive"] = self.cfg.contrastive_coef
        if self.uses_masked:
            weights["masked"] = self.cfg.masked_coef
        if self.has_novelty:
            weights["novelty"] = 1.0  # the predictor's own loss: no other part learns from it
        return weights

    @torch.no_grad()
    def update_targets(self) -> None:
        """EMA step of the target encoder, value head (and projector): target <- m * target + (1 - m) * online."""
        m = self.cfg.target_momentum
        pairs = [(self._target_encoder, self._encoder),
                 (self._target_q, self._q) if self.learns_q else (self._target_value, self._value)]
        if self.uses_contrastive:
            pairs.append((self._target_projector, self._projector))
        for target, online in pairs:
            for t, o in zip(target.parameters(), online.parameters()):
                t.lerp_(o.detach(), 1.0 - m)

    # --- files ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """The whole model, with the config that rebuilds it."""
        return save_checkpoint({"config": self.cfg.to_dict(), "action_dim": self.action_dim,
                                "action_kind": self.action_spec.kind, "state_dict": self.state_dict()},
                               path, kind="world_model")

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> WorldModel:
        data = load_checkpoint(path, kind="world_model", map_location=map_location)
        try:
            cfg, spec = Config.from_saved(data["config"]), ActionSpec(data.get("action_kind", "continuous"), data["action_dim"])
            model = cls(cfg, spec)
            model.load_state_dict(data["state_dict"])
        except (RuntimeError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path} does not hold a world model this version can rebuild: "
                                  f"{str(e).splitlines()[0][:300]}") from None
        return model

    def save_encoder(self, path: str | Path) -> Path:
        """The encoder alone (online weights), with the keys that define its input and shape."""
        return save_checkpoint({"encoder_config": self.encoder_config(), "state_dict": self._encoder.state_dict()},
                               path, kind="encoder")

    def load_encoder(self, path: str | Path) -> None:
        """Load an encoder file into this model (online and target encoders); refuses a mismatch."""
        data = load_checkpoint(path, kind="encoder")
        self.set_encoder(data["state_dict"], data["encoder_config"], source=str(path))

    @staticmethod
    def encoder_weights(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The online encoder's weights within a whole model's `state_dict()` (what `set_encoder`
        and `save_encoder` take and write); empty when it holds none."""
        prefix = "_encoder."
        return {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}

    def encoder_config(self) -> dict[str, Any]:
        """The values of `ENCODER_KEYS` this model was built with."""
        return {key: getattr(self.cfg, key) for key in ENCODER_KEYS}

    def freeze_encoder_layers(self, n: int) -> None:
        """Stop training the online encoder's first `n` layers (input side; see the encoders' `layers`):
        partial fine-tuning. Call before building the trainer, which leaves them out of its optimiser.
        All of them but the last at most: a fully frozen encoder is `encoder_mode=frozen`."""
        layers = self._encoder.layers()
        if not 0 <= n < len(layers):
            raise ConfigError(f"encoder_frozen_layers={n}: this encoder has {len(layers)} layers, so freeze at most "
                              f"{len(layers) - 1} of them (encoder_mode=frozen freezes all).")
        for params in layers[:n]:
            for p in params:
                p.requires_grad_(False)

    def set_encoder(self, state_dict: dict[str, torch.Tensor], encoder_config: dict[str, Any], source: str) -> None:
        """Copy pretrained encoder weights into the online and target encoders.

        `encoder_config` holds the `ENCODER_KEYS` the weights were trained with; any difference from
        this model's is refused with one error naming each key.
        """
        mine, theirs = self.encoder_config(), encoder_config_of(encoder_config)
        diff = {key: (theirs[key], mine[key]) for key in ENCODER_KEYS if theirs[key] != mine[key]}
        if diff:
            detail = ", ".join(f"{key}: source {a!r} vs this model {b!r}" for key, (a, b) in diff.items())
            raise CheckpointError(f"The encoder from {source} does not fit this model ({detail}). "
                                  "Build the model with the same values for these keys.")
        self._encoder.load_state_dict(state_dict)
        self._target_encoder.load_state_dict(state_dict)


NOVELTY_FEATURES = 64
"""Output size of the random network and its predictor (`Config.novelty`)."""


def _ahead(x: torch.Tensor, horizon: int) -> torch.Tensor:
    """x `(B, T, ...)` -> `(B, T - K, K, ...)`: for each rollout start s, x at steps s+1 .. s+K (K = horizon)."""
    return rearrange(x[:, 1:].unfold(1, horizon, 1), "b s ... k -> b s k ...")


def _latent_norm(cfg: Config) -> nn.Module:
    """The norm every latent-valued network ends in (encoder, dynamics, masked filter): `cfg.latent_norm`."""
    return latent_norm(cfg.latent_norm, cfg.latent_dim, cfg.simnorm_group)


def _make_encoder(cfg: Config) -> nn.Module:
    channels, differences = 3 * cfg.history, cfg.stack_as == "differences"
    if cfg.encoder == "patch":
        return PatchEncoder(channels, cfg.image_size, cfg.patch_size, cfg.latent_dim, cfg.vit_width, cfg.vit_depth,
                            norm=_latent_norm(cfg), frames=cfg.history, differences=differences)
    return ConvEncoder(channels, cfg.image_size, cfg.latent_dim, cfg.enc_channels, cfg.enc_depth, cfg.enc_stem,
                       norm=_latent_norm(cfg), frames=cfg.history, differences=differences, act=cfg.enc_act)


def _frozen_copy(module: nn.Module) -> nn.Module:
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


__all__ = ["ENCODER_KEYS", "WorldModel"]
