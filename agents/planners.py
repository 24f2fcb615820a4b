"""Sampling planners in latent space: MPPI and CEM, siblings behind one interface.

    planner = make_planner(cfg, model)               # cfg.planner: "mppi" | "cem"
    action, plan = planner.plan(z, warm, eval=False, generator=gens)  # z (N, D) -> action (N, A)
    warm = planner.shift(plan)                        # warm start for the next step

Each call refits a sampling distribution over action sequences `(N, H, A)` for `iterations`
rounds: sample `samples - policy_samples` candidates per env, roll them out through the world model
in one batch, score them, refit on them together with the `policy_samples` sequences the model's
policy prior proposed. Score = discounted sum of predicted rewards + discounted value after H
steps; predicted termination cuts the sum. The prior's sequences are rolled out (and so scored)
once per call, while they are proposed: the model is deterministic, so rescoring them each round
would give the same numbers.

Continuous actions: a Gaussian per step (mean, std), samples clipped to [-1, 1].
Discrete actions: a categorical per step (probabilities over the A choices), samples one-hot.
The refit weights are where the siblings differ: CEM weights the `elites` best candidates equally;
MPPI weights them by softmax(score / (temperature * std(score))).

The action (`act_from`): `"elite"` (the default) draws one candidate of the last round by its refit
weight and takes its first action (TD-MPC2; training adds the plan's noise to it); `"mean"` takes the
refitted distribution's first step (evaluation; training samples around it). The mean of a plan whose good
candidates split between opposite actions (a pendulum at rest at the bottom: swing left or right)
is a middle action that neither plan takes; an elite candidate is always a plan that scored well.
Discrete actions explore, in training, by sampling the refitted first-step categorical either way.

Randomness: `generator` is either one `torch.Generator` for the whole batch or a list of N, one
per env (row). With one per row, every random number of row i (Gaussian candidates, categorical
samples, the policy prior's noise, the exploration noise of the first action) comes from
`generator[i]`, so an env's plan under a seed is the same whether it is planned alone or batched
with others. Categorical samples are drawn by the Gumbel-max trick, so they too are plain noise
drawn per row.

`compile()` (what `make_planner` does when `cfg.compile`) torch.compiles the two rollouts (the
sampled candidates' scoring and the policy prior's proposals): static shapes, so two graphs per
batch size N (training envs, evaluation env), CUDA graphs on CUDA. The random numbers are drawn
outside them, so a compiled plan draws exactly what an eager one does.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from worldmodel.config import Config
from worldmodel.model import WorldModel
from worldmodel.precision import autocast

Generators = torch.Generator | Sequence[torch.Generator] | None
"""Random streams for N rows: one generator shared by all rows, or one per row (None: the global one)."""


def _draw(sampler: Callable[..., torch.Tensor], n: int, shape: tuple[int, ...], generator: Generators,
         device: torch.device) -> torch.Tensor:
    """`(n, *shape)` float32 random numbers from `sampler` (`torch.rand` or `torch.randn`).

    With one generator per row, row i is `sampler(shape, generator=generator[i])`: the same numbers
    whatever the other rows are. One draw when n == 1 or when a single generator is shared.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return sampler((n, *shape), generator=generator, device=device)
    if len(generator) != n:
        raise ValueError(f"got {len(generator)} generators for {n} rows: pass one per env, or a single one.")
    if n == 1:
        return sampler((1, *shape), generator=generator[0], device=device)
    return torch.stack([sampler(shape, generator=g, device=device) for g in generator])


def _gumbel(n: int, shape: tuple[int, ...], generator: Generators, device: torch.device) -> torch.Tensor:
    """`(n, *shape)` standard Gumbel noise, drawn per row as by `_draw`: argmax(log p + noise) samples p."""
    return -torch.log(-torch.log(_draw(torch.rand, n, shape, generator, device)))


@dataclass
class Plan:
    """A sampling distribution over action sequences of N envs.

    Continuous: `mean`, `std` `(N, H, A)`. Discrete: `probs` `(N, H, A)` (mean/std unused).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def select(self, mask: torch.Tensor, other: Plan) -> Plan:
        """Rows of `other` where `mask (N,)` is set, of self elsewhere."""
        m = mask.view(-1, 1, 1).to(self.mean.device)
        return Plan(torch.where(m, other.mean, self.mean), torch.where(m, other.std, self.std))


class SamplingPlanner(ABC):
    """Shared machinery; the siblings define `_weights`.

    Args:
        model: the world model; the planner calls its `transition` (next latent, reward, termination),
            `value` and, with a policy prior, `policy`.
        horizon, samples, iterations, elites, discount, min_std, max_std: see `Config`.
        policy_samples: candidates proposed by the model's policy prior (0: none).
        precision: autocast precision for the rollouts.
        temperature: MPPI's softmax temperature, relative to the spread of the scores.
        act_from: "mean" or "elite", see the module docstring.
        optimism: training plans read the value at the horizon as the Q heads' mean plus this many
            halves of their spread (`Config.optimism`); evaluation plans read the mean.
        novelty: training plans add this many times the model's `novelty` of each imagined latent to
            the reward of the step into it (`Config.novelty`); evaluation plans add nothing.
    """

    def __init__(self, model: WorldModel, horizon: int, samples: int, iterations: int, elites: int,
                 discount: float, min_std: float, max_std: float, policy_samples: int = 0,
                 precision: str = "fp32", temperature: float = 0.5, act_from: str = "elite",
                 optimism: float = 0.0, novelty: float = 0.0):
        if act_from not in ("mean", "elite"):
            raise ValueError(f"act_from={act_from!r}: choose 'mean' or 'elite'.")
        self.model, self.horizon, self.samples = model, horizon, samples
        self.iterations, self.elites, self.discount = iterations, elites, discount
        self.min_std, self.max_std = min_std, max_std
        self.policy_samples = policy_samples if model.has_policy else 0
        self.precision, self.temperature, self.act_from = precision, temperature, act_from
        self.optimism, self.novelty = optimism, novelty
        self.discrete = model.action_spec.kind == "discrete"
        self.action_dim = model.action_dim
        self._score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self.score
        self._propose: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = self.propose
        self.compiled = False
        self.compile_seconds: dict[int, float] = {}
        """Batch size N -> seconds of the first compiled `plan` call at N (compiling included)."""

    def compile(self, mode: str | None = None) -> None:
        """torch.compile the rollouts (`score`, `propose`), the bulk of the planner's work. Shapes are
        static (`dynamic=False`), so there are two graphs per batch size N and none after them;
        `mode="reduce-overhead"` replays them as CUDA graphs (worth it on CUDA, where a plan is many
        small kernels)."""
        self._score = torch.compile(self.score, dynamic=False, fullgraph=True, mode=mode)
        self._propose = torch.compile(self.propose, dynamic=False, fullgraph=True, mode=mode)
        self.compiled = True

    # --- distributions -------------------------------------------------------------------
    def initial(self, n: int, device: torch.device) -> Plan:
        """The uninformed distribution: zero-mean, max std (continuous) or uniform (discrete)."""
        shape = (n, self.horizon, self.action_dim)
        if self.discrete:
            uniform = torch.full(shape, 1.0 / self.action_dim, device=device)
            return Plan(uniform, torch.zeros(shape, device=device))
        return Plan(torch.zeros(shape, device=device), torch.full(shape, self.max_std, device=device))

    def shift(self, plan: Plan) -> Plan:
        """Warm start: the plan moved one step forward, the freed last step uninformed; std reset."""
        fresh = self.initial(plan.mean.shape[0], plan.mean.device)
        mean = torch.cat([plan.mean[:, 1:], fresh.mean[:, -1:]], dim=1)
        return Plan(mean, fresh.std)

    def _sample(self, plan: Plan, generator: Generators) -> torch.Tensor:
        """`samples - policy_samples` candidates `(N, S, H, A)` from `plan`."""
        n, h, a = plan.mean.shape
        count = self.samples - self.policy_samples
        if self.discrete:
            noise = _gumbel(n, (count, h, a), generator, plan.mean.device)
            index = (plan.mean.log()[:, None] + noise).argmax(-1)
            return F.one_hot(index, a).float()
        noise = _draw(torch.randn, n, (count, h, a), generator, plan.mean.device)
        return (plan.mean[:, None] + plan.std[:, None] * noise).clamp(-1.0, 1.0)

    def _prior_noise(self, n: int, generator: Generators, device: torch.device) -> torch.Tensor:
        """The policy prior's noise for `propose`, `(N, H, P, A)`: Gaussian (continuous) or Gumbel."""
        shape = (self.horizon, self.policy_samples, self.action_dim)
        return (_gumbel if self.discrete else partial(_draw, torch.randn))(n, shape, generator, device)

    # --- rollouts ------------------------------------------------------------------------
    def _rollout(self, latent: torch.Tensor, act: Callable[[int, torch.Tensor], torch.Tensor],
                 optimism: float = 0.0, novelty: float = 0.0) -> torch.Tensor:
        """Roll B latents `(B, D)` H steps, taking `act(h, latent) -> (B, A)` at step h; the predicted
        discounted return `(B,)`: rewards (plus `novelty` times each reached latent's novelty, see
        `WorldModel.novelty`) until a predicted termination, plus the last latent's value (read with
        `optimism`, see `WorldModel.value`).
        """
        b = latent.shape[0]
        total = torch.zeros(b, device=latent.device)
        alive = torch.ones(b, device=latent.device)
        discount = 1.0
        for h in range(self.horizon):
            latent, reward, ends = self.model.transition(latent, act(h, latent))
            if novelty:
                reward = reward + novelty * self.model.novelty(latent)
            total = total + discount * alive * reward
            alive = alive * (1.0 - ends)
            discount *= self.discount
        return total + discount * alive * self.model.value(latent, optimism)

    def score(self, z: torch.Tensor, actions: torch.Tensor, optimism: float = 0.0, novelty: float = 0.0
              ) -> torch.Tensor:
        """Predicted discounted return of each candidate: z `(N, D)`, actions `(N, S, H, A)` -> `(N, S)`."""
        n, s = actions.shape[:2]
        flat = rearrange(actions, "n s h a -> (n s) h a")
        total = self._rollout(repeat(z, "n d -> (n s) d", s=s), lambda h, latent: flat[:, h], optimism, novelty)
        return rearrange(total, "(n s) -> n s", n=n)

    def propose(self, z: torch.Tensor, noise: torch.Tensor, optimism: float = 0.0, novelty: float = 0.0
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy prior's P sequences per env and their scores: z `(N, D)`, noise `(N, H, P, A)`
        (from `_prior_noise`) -> actions `(N, P, H, A)`, scores `(N, P)`. Continuous: the policy's
        action plus `min_std` Gaussian noise; discrete: a sample of its softmax (Gumbel-max)."""
        n, p = z.shape[0], noise.shape[2]
        noise = rearrange(noise, "n h p a -> h (n p) a")
        actions: list[torch.Tensor] = []

        def act(h: int, latent: torch.Tensor) -> torch.Tensor:
            if self.discrete:
                action = self.model.policy(latent, sample=True, noise=noise[h])
            else:
                action = (self.model.policy(latent) + self.min_std * noise[h]).clamp(-1.0, 1.0)
            actions.append(action)
            return action

        total = self._rollout(repeat(z, "n d -> (n p) d", p=p), act, optimism, novelty)
        sequences = rearrange(torch.stack(actions, 1), "(n p) h a -> n p h a", n=n)
        return sequences, rearrange(total, "(n p) -> n p", n=n)

    # --- the call ------------------------------------------------------------------------
    @torch.inference_mode()
    def plan(self, z: torch.Tensor, warm: Plan | None = None, eval: bool = False,
             generator: Generators = None) -> tuple[torch.Tensor, Plan]:
        """Choose actions for latents `z (N, D)`.

        `generator`: one for all rows, or a list of N (one per env, see the module docstring).
        Returns the action vectors `(N, A)` (with `act_from="mean"`: the plan's mean / most likely
        first action when `eval`, a sample from its first step otherwise; with `"elite"`: one elite
        candidate's first action, see the module docstring) and the refitted plan (for `shift`).
        """
        n = z.shape[0]
        timing = self.compiled and n not in self.compile_seconds
        start = time.perf_counter()
        plan = warm if warm is not None else self.initial(n, z.device)
        optimism, novelty = (0.0, 0.0) if eval else (self.optimism, self.novelty)
        with autocast(z.device, self.precision):
            # Copies (.clone()): a CUDA-graph replay reuses its output buffers on the next call.
            if self.policy_samples:
                noise = self._prior_noise(n, generator, z.device)
                prior, prior_scores = (t.float().clone() for t in self._propose(z, noise, optimism, novelty))
            for _ in range(self.iterations):
                candidates = self._sample(plan, generator)
                scores = self._score(z, candidates, optimism, novelty).float().clone()
                if self.policy_samples:
                    candidates = torch.cat([prior, candidates], dim=1)
                    scores = torch.cat([prior_scores, scores], dim=1)
                weights = self._weights(scores)
                plan = self._fit(candidates, weights)
        if self.act_from == "elite":
            action = self._elite_action(plan, candidates, weights, eval, generator)
        else:
            action = self._first_action(plan, eval, generator)
        if timing:
            self.compile_seconds[n] = time.perf_counter() - start
        return action, plan

    def _elite_action(self, plan: Plan, candidates: torch.Tensor, weights: torch.Tensor, eval: bool,
                      generator: Generators) -> torch.Tensor:
        """The first action `(N, A)` of one candidate per env, drawn with probability `weights (N, S)`
        (Gumbel-max, per row) from the last round's `candidates (N, S, H, A)`; in training, continuous
        actions get the plan's noise and discrete ones are sampled from the plan (as `_first_action`)."""
        n = candidates.shape[0]
        if self.discrete and not eval:
            return self._first_action(plan, eval, generator)
        index = (weights.log() + _gumbel(n, (weights.shape[1],), generator, weights.device)).argmax(1)
        first = candidates[torch.arange(n, device=candidates.device), index, 0]
        if eval:
            return first
        noise = _draw(torch.randn, n, (self.action_dim,), generator, first.device)
        return (first + plan.std[:, 0] * noise).clamp(-1.0, 1.0)

    def _first_action(self, plan: Plan, eval: bool, generator: Generators) -> torch.Tensor:
        first = plan.mean[:, 0]
        n = first.shape[0]
        if self.discrete:
            logits = first.log()
            if not eval:
                logits = logits + _gumbel(n, (self.action_dim,), generator, first.device)
            return F.one_hot(logits.argmax(-1), self.action_dim).float()
        if eval:
            return first.clamp(-1.0, 1.0)
        noise = _draw(torch.randn, n, (self.action_dim,), generator, first.device)
        return (first + plan.std[:, 0] * noise).clamp(-1.0, 1.0)

    @abstractmethod
    def _weights(self, scores: torch.Tensor) -> torch.Tensor:
        """Refit weights `(N, S)` (each row summing to 1, zero outside the elites) from scores `(N, S)`."""

    def _fit(self, candidates: torch.Tensor, weights: torch.Tensor) -> Plan:
        """Weighted refit: candidates `(N, S, H, A)`, weights `(N, S)` summing to 1."""
        w = weights[..., None, None]
        mean = (w * candidates).sum(1)
        if self.discrete:
            # Keep a little mass on every choice so a categorical never collapses for good.
            probs = 0.9 * mean + 0.1 / self.action_dim
            return Plan(probs, torch.zeros_like(probs))
        std = (w * (candidates - mean[:, None]).square()).sum(1).sqrt()
        return Plan(mean, std.clamp(self.min_std, self.max_std))


class CEMPlanner(SamplingPlanner):
    """Cross-entropy method: refit to the `elites` best candidates, equally weighted."""

    def _weights(self, scores: torch.Tensor) -> torch.Tensor:
        top = scores.topk(self.elites, dim=1).indices
        return torch.zeros_like(scores).scatter_(1, top, 1.0 / self.elites)


class MPPIPlanner(SamplingPlanner):
    """Model-predictive path integral: refit to all candidates weighted by
    softmax(score / (temperature * std of scores)), so the weighting is free of the reward's scale;
    candidates outside the `elites` best get no weight."""

    def _weights(self, scores: torch.Tensor) -> torch.Tensor:
        scale = self.temperature * scores.std(dim=1, keepdim=True).clamp_min(1e-6)
        logits = (scores - scores.max(dim=1, keepdim=True).values) / scale
        kth = scores.topk(self.elites, dim=1).values[:, -1:]
        return torch.softmax(logits.masked_fill(scores < kth, float("-inf")), dim=1)


PLANNERS = {"mppi": MPPIPlanner, "cem": CEMPlanner}


def make_planner(cfg: Config, model: WorldModel) -> SamplingPlanner:
    """The planner `cfg.planner` names, sized by the config; compiled when `cfg.compile` (with CUDA
    graphs when the model is on CUDA)."""
    planner = PLANNERS[cfg.planner](
        model, horizon=cfg.horizon, samples=cfg.samples, iterations=cfg.iterations, elites=cfg.elites,
        discount=cfg.discount, min_std=cfg.min_std, max_std=cfg.max_std,
        policy_samples=cfg.policy_samples if cfg.policy_prior else 0, precision=cfg.precision,
        temperature=cfg.mppi_temperature, act_from=cfg.act_from, optimism=cfg.optimism, novelty=cfg.novelty)
    if cfg.compile:
        on_cuda = next(model.parameters()).device.type == "cuda"
        planner.compile(mode="reduce-overhead" if on_cuda else None)
    return planner
