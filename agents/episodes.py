"""A run's pixel environments, built from its config, and whole episodes played in them outside
the replay: evaluation returns and recorded episodes.

    envs = make_envs(cfg, 4, seed=0)                                      # gymnasium.vector pixel envs
    spec, state_dim = env_facts(cfg)                                      # action space, probe-state size
    returns = evaluate(agent, envs, spec, episodes=10, seed=0)             # (10,) float
    episodes = record_episodes(make_single_env(cfg), spec, 4, seed=0)     # random actions, for probes
    episodes = record_episodes(env, spec, 2, seed=0, policy=act)          # with a policy, for videos

Every part of the package opens its environments through `make_single_env` / `make_envs`, so the
image size and action repeat of a run are read from its config in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from tensordict import TensorDict

from agents.base import Agent
from envs import COLOR_MODES, PERTURBATIONS, make_env, make_vector_env, parse_perturbation, perturbation_spec, resolve_id
from worldmodel.actions import ActionSpec
from worldmodel.config import Config, ConfigError


def make_single_env(cfg: Config, seed: int | None = None, perturb: str | None = None, suite_render: bool = False):
    """One pixel env of `cfg.env` at the run's image size and action repeat (frames `(3, S, S)`
    uint8; the model stacks its own `history`); `suite_render`: see `envs.make_env`."""
    return make_env(cfg.env, image_size=cfg.image_size, action_repeat=cfg.action_repeat, seed=seed,
                    perturb=perturb, suite_render=suite_render)


def make_envs(cfg: Config, num_envs: int, seed: int, *, asynchronous: bool | None = None,
              perturb: str | None = None):
    """`num_envs` pixel envs of `cfg.env` as one `gymnasium.vector` env (asynchronous workers when
    more than one, unless `asynchronous` says otherwise)."""
    return make_vector_env(cfg.env, num_envs, seed=seed, asynchronous=num_envs > 1 if asynchronous is None
                           else asynchronous, image_size=cfg.image_size, action_repeat=cfg.action_repeat,
                           perturb=perturb)


def episode_frames(cfg: Config) -> int | None:
    """The most frames one episode of `cfg.env` can hold (agent steps under its registered time limit
    at `cfg.action_repeat`, plus the first frame); None when the id registers no limit."""
    limit = resolve_id(cfg.env).max_episode_steps
    return None if not limit else math.ceil(limit / cfg.action_repeat) + 1


def env_facts(cfg: Config, seed: int | None = None) -> tuple[ActionSpec, int]:
    """The action spec of `cfg.env` and the size of its probe state (`info["state"]`, 0 if none),
    from one env opened and closed here (a bad env id fails here, before anything is written)."""
    env = make_single_env(cfg, seed=seed)
    try:
        spec = ActionSpec.from_space(env.action_space)
        _, info = env.reset(seed=seed)
    finally:
        env.close()
    state = info.get("state")
    return spec, 0 if state is None else int(np.asarray(state).size)


def other_env_config(cfg: Config, spec: ActionSpec, env_id: str, key: str = "on_env") -> Config:
    """`cfg` with `env_id` as its env, for playing an agent of `spec`'s actions there (`key=env_id` in
    messages): the same action space is required (a bad id fails opening it, with the did-you-mean error),
    and the frames keep the run's image size, history and action repeat, so the encoder sees what it
    was trained on."""
    other = cfg.replace(env=env_id, eval_also="")  # the conditions belong to the run, not to the env played
    other_spec, _ = env_facts(other)
    if other_spec != spec:
        raise ConfigError(f"{key}={env_id!r} takes {other_spec.kind} actions of size {other_spec.dim}; this agent "
                          f"acts with {spec.kind} actions of size {spec.dim} (trained on {cfg.env!r}): pick an env "
                          "with the same action space.")
    return other


@dataclass(frozen=True)
class EvalCondition:
    """One condition of `Config.eval_also`: the env played and the perturbation shown."""

    label: str
    """The name its metrics carry: `eval/<label>/return` (`color:3`, `color_hard`, `cartpole-balance-v0`)."""
    cfg: Config
    """The run's config, with the other env where the condition names one."""
    perturb: str | None = None
    """`name:severity` or a DMC colour mode; None for another env played clean."""


def eval_conditions(cfg: Config, spec: ActionSpec) -> list[EvalCondition]:
    """`cfg.eval_also` resolved and checked, before anything is written: a perturbation by its name
    (`envs.perturb`, or a colour mode, which needs a DeepMind Control env), anything else as an env id
    with `spec`'s actions. A bad name fails here with the error that names the fix."""
    items = [c.strip() for c in cfg.eval_also.split(",") if c.strip()]
    out: list[EvalCondition] = []
    for item in items:
        name = item.partition(":")[0].strip()
        if name in PERTURBATIONS or name in COLOR_MODES or (":" in item and "/" not in item):
            perturb = perturbation_spec(*parse_perturbation(item))
            if name in COLOR_MODES:
                make_single_env(cfg, perturb=perturb).close()  # refused on an env that is not DeepMind Control
            out.append(EvalCondition(perturb, cfg, perturb))
        else:
            out.append(EvalCondition(item.rpartition("/")[2], other_env_config(cfg, spec, item, "eval_also"), None))
    labels = [c.label for c in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"eval_also={cfg.eval_also!r} names two conditions that would log under the same name "
                          f"({', '.join(labels)}): keep one of them.")
    return out


class TrainingActing:
    """`agent` acting as it does in training wherever `evaluate` asks for evaluation acting: the plan's
    exploration noise on the chosen action (and optimism and novelty bonuses, for a run trained with
    them), from its training memory and streams. To tell whether noise-free acting is what fails
    (`scripts/evaluate.py acting=training`); every other attribute is the agent's."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def reset(self, mask: torch.Tensor, eval: bool = False) -> None:
        self.agent.reset(mask, eval=False)

    def act(self, obs: torch.Tensor, eval: bool = False) -> torch.Tensor:
        return self.agent.act(obs, eval=False)

    def __getattr__(self, name: str):
        return getattr(self.agent, name)


def _obs_tensor(obs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(obs))


def evaluate(agent: Agent, envs, spec: ActionSpec, episodes: int, seed: int, on_step=None,
             trace: list[TensorDict] | None = None) -> np.ndarray:
    """Returns of `episodes` full episodes with exploration off: `(episodes,)` float.

    With N envs, env i plays a fixed quota of the episodes (`episodes // N`, one more for the first
    `episodes % N`), so short episodes are not over-counted the way "the first `episodes` to finish"
    would. `on_step(obs)`, if given, sees every observation `(N, C, H, W)` uint8 (e.g. to record video).
    `trace`, if given a list, receives each counted episode as it ends, as `record_episodes` gives
    them: `obs (L, 3, H, W)` uint8 (the newest frame of each observation, the last one included),
    `action (L, A)` float32 (the agent's action vector, one-hot for discrete actions), `reward (L,)`
    float32 and `terminated (L,)` bool (of the step that led to each frame; zeros and False for the
    first) and, where the env has one, `state (L, S)` (e.g. to probe the latents, or to check the value
    and the reward head against what happened, on the agent's own episodes).
    """
    n = envs.num_envs
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    obs, info = envs.reset(seed=seed)
    agent.reset(torch.ones(n, dtype=torch.bool), eval=True)
    returns: list[list[float]] = [[] for _ in range(n)]
    running = np.zeros(n)
    reset_next = np.zeros(n, dtype=bool)
    steps: list[list[tuple]] = [[] for _ in range(n)]  # with `trace`: env i's episode so far
    led_reward, led_terminated = np.zeros(n), np.zeros(n, dtype=bool)  # of the step into each env's obs
    led_action = np.zeros((n, spec.dim), dtype=np.float32)

    def keep(i: int) -> None:  # env i's current observation, into its episode so far
        states = info.get("state")
        steps[i].append((obs[i, -3:].copy(), None if states is None else np.array(states[i]),
                         float(led_reward[i]), bool(led_terminated[i]), led_action[i].copy()))

    while any(len(r) < q for r, q in zip(returns, quota)):
        if trace is not None:
            for i in np.flatnonzero(~reset_next):  # a finished episode's last frame is kept already
                keep(i)
        if on_step is not None:
            on_step(obs)
        action = agent.act(_obs_tensor(obs), eval=True)
        obs, reward, terminated, truncated, info = envs.step(spec.to_env(action))
        first = reset_next  # these envs just returned the first frame of a new episode
        if first.any():
            agent.reset(torch.as_tensor(first), eval=True)
        running += np.where(first, 0.0, reward)
        led_reward, led_terminated = np.where(first, 0.0, reward), np.asarray(terminated, bool) & ~first
        if trace is not None:
            led_action = np.where(first[:, None], 0.0, action.detach().float().cpu().numpy()).astype(np.float32)
        done = np.logical_or(terminated, truncated) & ~first
        for i in np.flatnonzero(done):
            if len(returns[i]) < quota[i]:
                returns[i].append(float(running[i]))
                if trace is not None:
                    keep(i)
                    trace.append(_traced_episode(steps[i]))
            steps[i] = []
        running[done] = 0.0
        reset_next = done
    return np.asarray([r for per_env in returns for r in per_env])


def _traced_episode(steps: list[tuple]) -> TensorDict:
    """`(frame (3, H, W) uint8, state (S,) or None, reward, terminated, action (A,))` per step -> a
    TensorDict of `obs`, `action`, `reward`, `terminated` and, when every step has one, `state`."""
    data = {"obs": torch.from_numpy(np.stack([step[0] for step in steps])),
            "action": torch.from_numpy(np.stack([step[4] for step in steps])),
            "reward": torch.tensor([step[2] for step in steps], dtype=torch.float32),
            "terminated": torch.tensor([step[3] for step in steps], dtype=torch.bool)}
    if all(step[1] is not None for step in steps):
        data["state"] = torch.from_numpy(np.stack([step[1] for step in steps]).astype(np.float32))
    return TensorDict(data, batch_size=[len(steps)])


def record_episodes(env, spec: ActionSpec, episodes: int, seed: int, policy=None) -> list[TensorDict]:
    """Record whole episodes of one pixel env (uniformly random actions unless `policy` is given).

    Returns a list of TensorDicts of length L (steps + 1), in the replay's convention:
    `obs (L, 3, H, W) uint8` (newest frame), `action (L, A)` (what led here, zeros first),
    `reward (L,)`, `terminated (L,)`, `truncated (L,)`, and `state (L, S)` where the env has one.
    `policy(obs (1, C, H, W) uint8, first: bool) -> (1, A)` picks actions.
    """
    generator = torch.Generator().manual_seed(seed)
    recorded = []
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        steps = [(obs, np.zeros(spec.dim, np.float32), 0.0, False, False, info.get("state"))]
        done, first = False, True
        while not done:
            if policy is None:
                if spec.kind == "discrete":
                    action = torch.nn.functional.one_hot(torch.randint(spec.dim, (1,), generator=generator), spec.dim).float()
                else:
                    action = torch.rand(1, spec.dim, generator=generator) * 2 - 1
            else:
                action = policy(torch.from_numpy(obs)[None], first)
            first = False
            obs, reward, terminated, truncated, info = env.step(spec.to_env(action)[0])
            done = terminated or truncated
            steps.append((obs, action[0].numpy(), reward, terminated, truncated, info.get("state")))
        data = {
            "obs": torch.from_numpy(np.stack([s[0][-3:] for s in steps])),
            "action": torch.from_numpy(np.stack([s[1] for s in steps]).astype(np.float32)),
            "reward": torch.tensor([s[2] for s in steps], dtype=torch.float32),
            "terminated": torch.tensor([s[3] for s in steps]),
            "truncated": torch.tensor([s[4] for s in steps]),
        }
        if steps[0][5] is not None:
            data["state"] = torch.from_numpy(np.stack([s[5] for s in steps]).astype(np.float32))
        recorded.append(TensorDict(data, batch_size=[len(steps)]))
    return recorded
