"""Sampling planners in latent space: MPPI and CEM, siblings behind one interface.

    planner = make_planner(cfg, model)               # cfg.planner: "mppi" | "cem"
    action, plan = planner.plan(z, warm, eval=False, generator=g)   # z (N, D) -> action (N, A)
    warm = planner.shift(plan)                        # warm start for the next step

Each call refits a sampling distribution over action sequences `(N, H, A)` for `iterations`
rounds: sample `samples` candidates per env (plus `policy_samples` proposed by the model's policy
prior), roll them out through the world model in one batch, score them, refit. Score = discounted
sum of predicted rewards + discounted value after H steps; predicted termination cuts the sum.

Continuous actions: a Gaussian per step (mean, std), samples clipped to [-1, 1].
Discrete actions: a categorical per step (probabilities over the A choices), samples one-hot.
The refit is where the siblings differ: CEM averages the `elites` best candidates; MPPI weights
every candidate by softmax(score / (temperature * std(score))).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from worldmodel.config import Config
from worldmodel.model import WorldModel
from worldmodel.precision import autocast


@dataclass
class Plan:
    """A sampling distribution over action sequences of N envs.

    Continuous: `mean`, `std` `(N, H, A)`. Discrete: `probs` `(N, H, A)` (mean/std unused).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def select(self, mask: torch.Tensor, other: "Plan") -> "Plan":
        """Rows of `other` where `mask (N,)` is set, of self elsewhere."""
        m = mask.view(-1, 1, 1).to(self.mean.device)
        return Plan(torch.where(m, other.mean, self.mean), torch.where(m, other.std, self.std))


class SamplingPlanner(ABC):
    """Shared machinery; the siblings define `_refit`.

    Args:
        model: the world model (its `imagine`-style verbs: step, reward, termination, value, policy).
        horizon, samples, iterations, elites, discount, min_std, max_std: see `Config`.
        policy_samples: candidates proposed by the model's policy prior (0: none).
        precision: autocast precision for the rollouts.
    """

    def __init__(self, model: WorldModel, horizon: int, samples: int, iterations: int, elites: int,
                 discount: float, min_std: float, max_std: float, policy_samples: int = 0,
                 precision: str = "fp32", temperature: float = 0.5):
        self.model, self.horizon, self.samples = model, horizon, samples
        self.iterations, self.elites, self.discount = iterations, elites, discount
        self.min_std, self.max_std = min_std, max_std
        self.policy_samples = policy_samples if model.has_policy else 0
        self.precision, self.temperature = precision, temperature
        self.discrete = model.action_spec.kind == "discrete"
        self.action_dim = model.action_dim

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

    def _sample(self, plan: Plan, generator: torch.Generator | None) -> torch.Tensor:
        """`samples - policy_samples` candidates `(N, S, H, A)` from `plan`."""
        n, h, a = plan.mean.shape
        count = self.samples - self.policy_samples
        if self.discrete:
            probs = repeat(plan.mean, "n h a -> (n s h) a", s=count)
            index = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            return rearrange(F.one_hot(index, a).float(), "(n s h) a -> n s h a", n=n, s=count)
        noise = torch.randn((n, count, h, a), generator=generator, device=plan.mean.device)
        return (plan.mean[:, None] + plan.std[:, None] * noise).clamp(-1.0, 1.0)

    def _policy_candidates(self, z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """`policy_samples` sequences `(N, P, H, A)` proposed by the policy prior through the dynamics."""
        n, p = z.shape[0], self.policy_samples
        latent = repeat(z, "n d -> (n p) d", p=p)
        actions = []
        for _ in range(self.horizon):
            if self.discrete:
                action = self.model.policy(latent, sample=True, generator=generator)
            else:
                noise = torch.randn(latent.shape[0], self.action_dim, generator=generator, device=z.device)
                action = (self.model.policy(latent) + self.min_std * noise).clamp(-1.0, 1.0)
            actions.append(action)
            latent = self.model.step(latent, action)
        return rearrange(torch.stack(actions, 1), "(n p) h a -> n p h a", n=n)

    # --- scoring -------------------------------------------------------------------------
    def score(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Predicted discounted return of each candidate: z `(N, D)`, actions `(N, S, H, A)` -> `(N, S)`."""
        n, s = actions.shape[:2]
        latent = repeat(z, "n d -> (n s) d", s=s)
        actions = rearrange(actions, "n s h a -> (n s) h a")
        total = torch.zeros(n * s, device=z.device)
        alive = torch.ones(n * s, device=z.device)
        discount = 1.0
        for h in range(self.horizon):
            latent, reward, ends = self.model.transition(latent, actions[:, h])
            total = total + discount * alive * reward
            alive = alive * (1.0 - ends)
            discount *= self.discount
        total = total + discount * alive * self.model.value(latent)
        return rearrange(total, "(n s) -> n s", n=n)

    # --- the call ------------------------------------------------------------------------
    @torch.inference_mode()
    def plan(self, z: torch.Tensor, warm: Plan | None = None, eval: bool = False,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, Plan]:
        """Choose actions for latents `z (N, D)`.

        Returns the action vectors `(N, A)` (the plan's mean / most likely first action when `eval`,
        a sample from its first step otherwise) and the refitted plan (for `shift`).
        """
        plan = warm if warm is not None else self.initial(z.shape[0], z.device)
        with autocast(z.device, self.precision):
            prior = self._policy_candidates(z, generator) if self.policy_samples else None
            for _ in range(self.iterations):
                candidates = self._sample(plan, generator)
                if prior is not None:
                    candidates = torch.cat([prior.to(candidates.dtype), candidates], dim=1)
                scores = self.score(z, candidates).float()
                plan = self._refit(plan, candidates.float(), scores)
        return self._first_action(plan, eval, generator), plan

    def _first_action(self, plan: Plan, eval: bool, generator: torch.Generator | None) -> torch.Tensor:
        first = plan.mean[:, 0]
        if self.discrete:
            index = first.argmax(-1) if eval else torch.multinomial(first, 1, generator=generator).squeeze(-1)
            return F.one_hot(index, self.action_dim).float()
        if eval:
            return first.clamp(-1.0, 1.0)
        noise = torch.randn(first.shape, generator=generator, device=first.device)
        return (first + plan.std[:, 0] * noise).clamp(-1.0, 1.0)

    @abstractmethod
    def _refit(self, plan: Plan, candidates: torch.Tensor, scores: torch.Tensor) -> Plan:
        """The next distribution from candidates `(N, S, H, A)` and their scores `(N, S)`."""

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

    def _refit(self, plan: Plan, candidates: torch.Tensor, scores: torch.Tensor) -> Plan:
        top = scores.topk(self.elites, dim=1).indices
        weights = torch.zeros_like(scores).scatter_(1, top, 1.0 / self.elites)
        return self._fit(candidates, weights)


class MPPIPlanner(SamplingPlanner):
    """Model-predictive path integral: refit to all candidates weighted by
    softmax(score / (temperature * std of scores)), so the weighting is free of the reward's scale;
    candidates outside the `elites` best get no weight."""

    def _refit(self, plan: Plan, candidates: torch.Tensor, scores: torch.Tensor) -> Plan:
        scale = self.temperature * scores.std(dim=1, keepdim=True).clamp_min(1e-6)
        logits = (scores - scores.max(dim=1, keepdim=True).values) / scale
        kth = scores.topk(self.elites, dim=1).values[:, -1:]
        logits = logits.masked_fill(scores < kth, float("-inf"))
        return self._fit(candidates, torch.softmax(logits, dim=1))


PLANNERS = {"mppi": MPPIPlanner, "cem": CEMPlanner}


def make_planner(cfg: Config, model: WorldModel) -> SamplingPlanner:
    """The planner `cfg.planner` names, sized by the config."""
    return PLANNERS[cfg.planner](
        model, horizon=cfg.horizon, samples=cfg.samples, iterations=cfg.iterations, elites=cfg.elites,
        discount=cfg.discount, min_std=cfg.min_std, max_std=cfg.max_std,
        policy_samples=cfg.policy_samples if cfg.policy_prior else 0, precision=cfg.precision,
        temperature=cfg.mppi_temperature)
