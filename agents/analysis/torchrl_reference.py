"""TorchRL reference implementations, measured in the same run as our own code.

Each factory builds one of TorchRL's own implementations and returns
``(step, info)``: ``step()`` is a zero-argument callable doing one timed unit of
work, and ``info`` is a dict describing what was built (its ``"name"``, sizes
and, where there are trainable weights, ``"params"``).

- :func:`dreamer_world_model_step`: one optimisation step of TorchRL's Dreamer
  (v1) world model, ``torchrl.objectives.DreamerModelLoss``.
- :func:`plan_step`: one planning call of ``torchrl.modules.planners.MPPIPlanner``
  (``"mppi"``) or ``CEMPlanner`` (``"cem"``).

Everything is built with explicit input sizes (no lazy layers), so the
parameter counts are known before the first call. Run this module for a
quick timing at small sizes::

    .venv/bin/python -m agents.analysis.torchrl_reference [fp32] [bf16]
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from agents.analysis.results import median_seconds
from worldmodel.precision import autocast

PRECISIONS = ("fp32", "bf16")

# TorchRL's Dreamer defaults (sota-implementations/dreamer/config.yaml, networks:
# state_dim, rssm_hidden_dim, hidden_dim, activation "elu") and the default
# ObsEncoder / ObsDecoder (channels=32, num_layers=4), which are built for 64x64.
DREAMER_STATE_DIM = 30
DREAMER_RSSM_HIDDEN = 200
DREAMER_MLP_HIDDEN = 400
DREAMER_IMAGE_SIZE = 64
DREAMER_OBS_EMBED = 1024  # ObsEncoder output: 256 channels x 2 x 2 for a 64x64 frame
DREAMER_LR = 6e-4  # config.yaml: optimization.world_model_lr


def _check_precision(precision: str) -> None:
    """Only fp32 and bf16: TorchRL's references run without a gradient scaler, which fp16 would need."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not valid: choose one of {', '.join(PRECISIONS)}.")


def _count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- Dreamer


def _dreamer_world_model(action_dim: int, device: torch.device):
    """TorchRL's Dreamer world model, wired as in sota-implementations/dreamer.

    Returns a ``WorldModelWrapper(transition_model, reward_model)`` reading, for a
    TensorDict of batch shape ``(B, T)``:

    - ``("next", "pixels")`` ``(B, T, 3, 64, 64)`` -> ObsEncoder -> ``("next", "encoded_latents")`` ``(B, T, 1024)``
    - ``"state"`` ``(B, T, 30)``, ``"belief"`` ``(B, T, 200)``, ``"action"`` ``(B, T, A)``
      -> RSSMRollout(RSSMPrior, RSSMPosterior), a Python loop over T (only ``t = 0``'s
      state/belief are used; later steps carry the posterior state forward) ->
      ``("next", "prior_mean"/"prior_std"/"posterior_mean"/"posterior_std"/"state")`` ``(B, T, 30)``,
      ``("next", "belief")`` ``(B, T, 200)``
    - ObsDecoder(state, belief) -> ``("next", "reco_pixels")`` ``(B, T, 3, 64, 64)`` (mean of an
      IndependentNormal with scale 1)
    - reward MLP(state, belief) -> ``("next", "reward")`` ``(B, T, 1)`` (same)
    """
    from tensordict.nn import (
        ProbabilisticTensorDictModule,
        ProbabilisticTensorDictSequential,
        TensorDictModule,
        TensorDictSequential,
    )
    from torchrl.data import Bounded
    from torchrl.modules import (
        MLP,
        IndependentNormal,
        ObsDecoder,
        ObsEncoder,
        RSSMPosterior,
        RSSMPrior,
        RSSMRollout,
        WorldModelWrapper,
    )

    state_dim, belief_dim = DREAMER_STATE_DIM, DREAMER_RSSM_HIDDEN
    action_spec = Bounded(-1.0, 1.0, shape=(action_dim,))

    encoder = ObsEncoder(in_channels=3)
    decoder = ObsDecoder(latent_dim=state_dim + belief_dim)
    prior = RSSMPrior(
        action_spec,
        hidden_dim=belief_dim,
        rnn_hidden_dim=belief_dim,
        state_dim=state_dim,
        action_dim=action_dim,
    )
    posterior = RSSMPosterior(
        hidden_dim=belief_dim,
        state_dim=state_dim,
        rnn_hidden_dim=belief_dim,
        obs_embed_dim=DREAMER_OBS_EMBED,
    )
    reward_net = MLP(
        in_features=state_dim + belief_dim,
        out_features=1,
        depth=2,
        num_cells=DREAMER_MLP_HIDDEN,
        activation_class=nn.ELU,
    )

    rollout = RSSMRollout(
        TensorDictModule(
            prior,
            in_keys=["state", "belief", "action"],
            out_keys=[("next", "prior_mean"), ("next", "prior_std"), "_", ("next", "belief")],
        ),
        TensorDictModule(
            posterior,
            in_keys=[("next", "belief"), ("next", "encoded_latents")],
            out_keys=[("next", "posterior_mean"), ("next", "posterior_std"), ("next", "state")],
        ),
    )
    pixel_decoder = ProbabilisticTensorDictSequential(
        TensorDictModule(decoder, in_keys=[("next", "state"), ("next", "belief")], out_keys=["loc"]),
        ProbabilisticTensorDictModule(
            in_keys=["loc"],
            out_keys=[("next", "reco_pixels")],
            distribution_class=IndependentNormal,
            distribution_kwargs={"scale": 1.0, "event_dim": 3},
        ),
    )
    transition_model = TensorDictSequential(
        TensorDictModule(encoder, in_keys=[("next", "pixels")], out_keys=[("next", "encoded_latents")]),
        rollout,
        pixel_decoder,
    )
    reward_model = ProbabilisticTensorDictSequential(
        TensorDictModule(reward_net, in_keys=[("next", "state"), ("next", "belief")], out_keys=[("next", "loc")]),
        ProbabilisticTensorDictModule(
            in_keys=[("next", "loc")],
            out_keys=[("next", "reward")],
            distribution_class=IndependentNormal,
            distribution_kwargs={"scale": 1.0, "event_dim": 1},
        ),
    )
    return WorldModelWrapper(transition_model, reward_model).to(device)


def _dreamer_batch(batch_size: int, seq_len: int, action_dim: int, device: torch.device):
    """A random replay-buffer-like batch of batch shape ``(batch_size, seq_len)``.

    Keys (float32 unless noted), as in TorchRL's DreamerModelLoss tests and the
    slices the Dreamer replay buffer hands to the loss:

    ======================== =============================== ==========================
    key                      shape                           content
    ======================== =============================== ==========================
    ``state``                ``(B, T, 30)``                  zeros (posterior primer)
    ``belief``               ``(B, T, 200)``                 zeros (GRU primer)
    ``action``               ``(B, T, action_dim)``          uniform in [-1, 1]
    ``("next", "pixels")``   ``(B, T, 3, 64, 64)``           uniform in [0, 1]
    ``("next", "reward")``   ``(B, T, 1)``                   standard normal
    ``("next", "done")``     ``(B, T, 1)`` bool              False
    ``("next", "terminated")`` ``(B, T, 1)`` bool            False
    ======================== =============================== ==========================

    Only ``("next", "pixels")``, ``state``/``belief`` at ``t = 0``, ``action`` and
    ``("next", "reward")`` enter the loss. A real training batch also carries the root
    ``pixels``, which RSSMRollout unbinds and restacks every step; it is left out so the
    reference is timed at its leanest.
    """
    from tensordict import TensorDict

    B, T = batch_size, seq_len
    frame = (3, DREAMER_IMAGE_SIZE, DREAMER_IMAGE_SIZE)
    return TensorDict(
        {
            "state": torch.zeros(B, T, DREAMER_STATE_DIM),
            "belief": torch.zeros(B, T, DREAMER_RSSM_HIDDEN),
            "action": torch.rand(B, T, action_dim) * 2 - 1,
            "next": {
                "pixels": torch.rand(B, T, *frame),
                "reward": torch.randn(B, T, 1),
                "done": torch.zeros(B, T, 1, dtype=torch.bool),
                "terminated": torch.zeros(B, T, 1, dtype=torch.bool),
            },
        },
        batch_size=[B, T],
        device=device,
    )


def dreamer_world_model_step(
    batch_size: int,
    seq_len: int,
    image_size: int = 64,
    action_dim: int = 1,
    precision: str = "fp32",
    device: str = "cpu",
) -> tuple[Callable[[], None], dict]:
    """One optimisation step of TorchRL's Dreamer world model.

    Builds the world model at TorchRL's default Dreamer sizes (ObsEncoder and
    ObsDecoder with 32 channels x 4 layers, RSSMPrior/RSSMPosterior with a 200-unit
    GRU belief, 30-d stochastic state, 200 hidden units, reward MLP 230 -> 400 -> 400
    -> 1 with ELU), wrapped in a ``WorldModelWrapper`` and scored by
    ``torchrl.objectives.DreamerModelLoss`` (defaults: l2 reconstruction and reward
    losses, KL with free_nats=3, all weights 1), optimised by Adam (lr 6e-4, the
    Dreamer config's world_model_lr). The batch is fixed and random, built once,
    of batch shape ``(batch_size, seq_len)`` (see :func:`_dreamer_batch`).

    ``step()`` runs: loss forward (encoder over all B*T frames, RSSM rollout loop of
    ``seq_len`` prior+posterior steps, decoder over all B*T states, reward MLP),
    sum of the three loss terms, backward, ``optimizer.step()``, ``zero_grad()``.
    With ``precision="bf16"`` forward and loss run under
    ``torch.autocast(device_type, dtype=torch.bfloat16)`` (TorchRL's RSSMPrior keeps
    its GRUCell in fp32 by design); weights and optimiser state stay fp32.
    No gradient clipping (the sota script clips at norm 100; left out here).

    Raises:
        ValueError: ``image_size`` is not 64 (TorchRL's ObsDecoder always emits
            64x64 frames and the posterior is sized for the 64x64 encoder output),
            or ``precision`` is not ``"fp32"``/``"bf16"``, or a size is not positive.
    """
    from torchrl.objectives import DreamerModelLoss

    if image_size != DREAMER_IMAGE_SIZE:
        raise ValueError(
            f"image_size={image_size}: TorchRL's Dreamer ObsEncoder/ObsDecoder are built for "
            f"{DREAMER_IMAGE_SIZE}x{DREAMER_IMAGE_SIZE} frames only (the decoder always outputs 64x64)."
        )
    if batch_size < 1 or seq_len < 1 or action_dim < 1:
        raise ValueError(f"batch_size, seq_len and action_dim must be >= 1, got {batch_size}, {seq_len}, {action_dim}.")
    _check_precision(precision)
    dev = torch.device(device)

    world_model = _dreamer_world_model(action_dim, dev)
    loss_module = DreamerModelLoss(world_model)
    optimizer = torch.optim.Adam(loss_module.parameters(), lr=DREAMER_LR)
    batch = _dreamer_batch(batch_size, seq_len, action_dim, dev)

    def step() -> None:
        with autocast(dev, precision):
            losses, _ = loss_module(batch)
            loss = losses["loss_model_kl"] + losses["loss_model_reco"] + losses["loss_model_reward"]
        loss.sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    info = {
        "name": "torchrl.DreamerModelLoss",
        "params": _count_params(loss_module),
        "batch_size": batch_size,
        "seq_len": seq_len,
        "image_size": image_size,
        "action_dim": action_dim,
        "precision": precision,
        "device": str(dev),
    }
    return step, info


# --------------------------------------------------------------------------- planners


def _mlp(in_features: int, hidden: int, out_features: int) -> nn.Module:
    """TorchRL MLP ``in -> hidden -> hidden -> out`` with ELU; concatenates its inputs on the last dim."""
    from torchrl.modules import MLP

    return MLP(
        in_features=in_features,
        out_features=out_features,
        depth=2,
        num_cells=hidden,
        activation_class=nn.ELU,
    )


def _latent_env(latent_dim: int, hidden: int, action_dim: int, device: str = "cpu"):
    """A ``ModelBasedEnvBase`` whose whole state is one latent vector ``"latent"`` ``(latent_dim,)``.

    World model (``WorldModelWrapper``):

    - dynamics MLP: ``cat(latent (.., L), action (.., A)) -> hidden -> hidden -> latent (.., L)``
    - reward MLP, read on the new latent: ``latent (.., L) -> hidden -> hidden -> reward (.., 1)``

    Actions are bounded to [-1, 1]; the env is not batch-locked (any batch shape);
    it never sets ``done`` (TorchRL fills ``done``/``terminated`` with False).
    """
    from tensordict import TensorDict
    from tensordict.nn import TensorDictModule
    from torchrl.data import Bounded, Composite, Unbounded
    from torchrl.envs.model_based import ModelBasedEnvBase
    from torchrl.modules import WorldModelWrapper

    class LatentMLPEnv(ModelBasedEnvBase):
        def __init__(self, world_model):
            super().__init__(world_model, device=device, batch_size=torch.Size([]))
            self.observation_spec = Composite(latent=Unbounded((latent_dim,)))
            self.state_spec = Composite(latent=Unbounded((latent_dim,)))
            self.action_spec = Bounded(-1.0, 1.0, shape=(action_dim,))
            self.reward_spec = Unbounded((1,))

        def _reset(self, tensordict=None, **kwargs):
            td = TensorDict({}, batch_size=self.batch_size, device=self.device)
            return td.update(self.observation_spec.rand())

    world_model = WorldModelWrapper(
        TensorDictModule(_mlp(latent_dim + action_dim, hidden, latent_dim), in_keys=["latent", "action"], out_keys=["latent"]),
        TensorDictModule(_mlp(latent_dim, hidden, 1), in_keys=["latent"], out_keys=["reward"]),
    )
    return LatentMLPEnv(world_model)


def plan_step(
    kind: str,
    latent_dim: int,
    hidden: int,
    horizon: int,
    samples: int,
    iterations: int,
    top_k: int,
    action_dim: int = 1,
    precision: str = "fp32",
    device: str = "cpu",
) -> tuple[Callable[[], None], dict]:
    """One planning call of TorchRL's ``MPPIPlanner`` (``kind="mppi"``) or ``CEMPlanner``
    (``kind="cem"``) from one latent state.

    The env is :func:`_latent_env` (dynamics MLP ``L+A -> H -> H -> L``, reward MLP
    ``L -> H -> H -> 1`` on the next latent, ELU).

    - MPPI scores candidates by an advantage, so it gets
      ``TDLambdaEstimator(gamma=0.99, lmbda=0.95)`` over a value MLP ``L -> H -> H -> 1``
      (counted in ``params``); temperature 1. ``step()`` = ``planner(state)`` for a state of
      batch shape ``()``: ``iterations`` rounds of: sample ``samples`` action sequences
      ``(samples, horizon, A)`` from the current Gaussian, project to [-1, 1], roll the env out
      for ``horizon`` steps via ``env.rollout`` (one batched dynamics+reward call per step over
      all samples), TD(lambda) advantage at t=0 (value MLP over ``(samples, horizon)``), keep
      the ``top_k``, exp-weighted mean/std update. Returns the first action of the mean.
    - CEM has no value network: candidates are ranked by the sum of predicted rewards over the
      horizon, and the Gaussian is refit to the plain mean/std of the ``top_k``.

    Both run under ``torch.no_grad()`` (and bf16 autocast for ``precision="bf16"``).
    """
    from torchrl.modules import ValueOperator
    from torchrl.modules.planners import CEMPlanner, MPPIPlanner
    from torchrl.objectives.value import TDLambdaEstimator

    for name, v in dict(latent_dim=latent_dim, hidden=hidden, horizon=horizon, samples=samples,
                        iterations=iterations, top_k=top_k, action_dim=action_dim).items():
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}.")
    if kind not in ("mppi", "cem"):
        raise ValueError(f"kind={kind!r} is not valid: choose mppi or cem.")
    if top_k > samples:
        raise ValueError(f"top_k={top_k} must be <= samples={samples}.")
    _check_precision(precision)
    dev = torch.device(device)

    env = _latent_env(latent_dim, hidden, action_dim, device)
    modules = [env.world_model]
    if kind == "mppi":
        value_net = ValueOperator(_mlp(latent_dim, hidden, 1), in_keys=["latent"]).to(device)
        advantage = TDLambdaEstimator(gamma=0.99, lmbda=0.95, value_network=value_net)
        modules.append(value_net)
        planner = MPPIPlanner(
            env, advantage, temperature=1.0, planning_horizon=horizon,
            optim_steps=iterations, num_candidates=samples, top_k=top_k,
        )
        name = "torchrl.MPPIPlanner"
    else:
        planner = CEMPlanner(env, planning_horizon=horizon, optim_steps=iterations, num_candidates=samples, top_k=top_k)
        name = "torchrl.CEMPlanner"
    for m in modules:
        m.requires_grad_(False)
    state = env.reset()  # batch shape (): one latent (latent_dim,)

    def step() -> None:
        with torch.no_grad(), autocast(dev, precision):
            planner(state)

    info = {
        "name": name,
        "params": sum(_count_params(m) for m in modules),
        "latent_dim": latent_dim,
        "hidden": hidden,
        "horizon": horizon,
        "samples": samples,
        "iterations": iterations,
        "top_k": top_k,
        "action_dim": action_dim,
        "precision": precision,
        "device": str(device),
    }
    return step, info


# --------------------------------------------------------------------------- quick check

if __name__ == "__main__":
    import functools
    import sys

    torch.manual_seed(0)
    precisions = sys.argv[1:] or ["fp32"]
    planner_sizes = dict(latent_dim=128, hidden=256, horizon=5, samples=256, iterations=4, top_k=32)
    for precision in precisions:
        cases = [
            (dreamer_world_model_step, dict(batch_size=16, seq_len=16, image_size=64)),
            (functools.partial(plan_step, "mppi"), planner_sizes),
            (functools.partial(plan_step, "cem"), planner_sizes),
        ]
        for factory, sizes in cases:
            step, info = factory(**sizes, precision=precision)
            seconds = median_seconds(step, 5, 2)
            print(f"{info['name']:<26} {precision}  median {seconds * 1e3:9.1f} ms  {info}", flush=True)
