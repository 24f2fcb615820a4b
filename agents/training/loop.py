"""The online loop: collect -> store -> update -> evaluate -> log -> checkpoint.

A function handed its parts (envs, agent, replay, run folder, logger); scripts only assemble them.
Environments are `gymnasium.vector` envs (one or many) in NEXT_STEP autoreset mode: the step after
an episode ends returns the first frame of the next one (reward 0, action ignored).

Steps are counted in environment steps: agent steps x action_repeat x live envs.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from agents.base import Agent
from agents.episodes import evaluate
from agents.random import RandomAgent
from agents.training.collect import Collector
from agents.training.distributed import Distributed
from agents.training.runs import ONLINE, MetricsLogger, RunDir
from agents.training.stop import Interrupted, StopOnSignal
from worldmodel.actions import ActionSpec
from worldmodel.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from worldmodel.config import Config
from worldmodel.precision import NonFiniteLossError
from worldmodel.replay import SequenceReplay


@dataclass
class Counters:
    env_steps: int = 0
    agent_steps: int = 0
    episodes: int = 0
    updates: int = 0
    update_credit: float = 0.0
    restarts: int = 0


def _rank_folder(folder: Path, ctx: Distributed) -> Path:
    """Where this rank's own state lives in a checkpoint folder: the folder itself for rank 0."""
    return folder if ctx.main else folder / f"rank{ctx.rank}"


def _checkpoint(run: RunDir, cfg: Config, counters: Counters, agent: Agent, explorer: RandomAgent,
                replay: SequenceReplay, np_rng: np.random.Generator, ctx: Distributed) -> None:
    state = {
        "config": cfg.to_dict(),
        "env": cfg.env,
        "world": ctx.world,
        "counters": dataclasses.asdict(counters),
        "agent": agent.state_dict(),
        "explorer": explorer.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": np_rng.bit_generator.state,
            "python": list(random.getstate()[1]),
        },
    }
    if not ctx.enabled:
        run.save_checkpoint(counters.env_steps, state, ONLINE, extra=lambda d: replay.save(d / "replay"),
                            keep=cfg.keep_checkpoints)
        return
    # Every rank adds its own replay and RNG states to the folder; rank 0 commits it once all have.
    tmp = run.checkpoint_tmp(counters.env_steps)
    if ctx.main:
        run.clear_tmp(counters.env_steps)
    ctx.barrier()
    if not ctx.main:
        mine = _rank_folder(tmp, ctx)
        save_checkpoint(state, mine / "state.pt", kind=ONLINE)
        replay.save(mine / "replay")
    ctx.barrier()
    if ctx.main:
        run.save_checkpoint(counters.env_steps, state, ONLINE, extra=lambda d: replay.save(d / "replay"),
                            keep=cfg.keep_checkpoints, clear=False)
    ctx.barrier()


def restore(run: RunDir, cfg: Config, agent: Agent, explorer: RandomAgent, replay: SequenceReplay,
            np_rng: np.random.Generator, ctx: Distributed | None = None) -> Counters:
    """Load the latest checkpoint of `run` (this rank's part of it) into the parts; returns the
    counters to continue from."""
    ctx = ctx or Distributed()
    if ctx.main:
        # The newest checkpoint whose state and replay both read (a damaged `latest` falls back).
        folder, state = run.load_resumable(ONLINE, then=lambda f: replay.load(f / "replay"))
    name = ctx.broadcast(folder.name if ctx.main else None)  # every rank resumes from the same one
    if not ctx.main:
        folder, _, state = run.load(name)
    if state["env"] != cfg.env:
        raise CheckpointError(
            f"Checkpoint {folder} was trained on {state['env']!r}, this run is for {cfg.env!r}: "
            "pass the matching env= or another run_dir."
        )
    if state.get("world", 1) != ctx.world:
        raise CheckpointError(
            f"Checkpoint {folder} was written by {state.get('world', 1)} process(es), this run has {ctx.world}: "
            f"resume with torchrun --nproc_per_node={state.get('world', 1)} (or without torchrun for 1)."
        )
    if not ctx.main:
        state = load_checkpoint(_rank_folder(folder, ctx) / "state.pt", kind=ONLINE)
        replay.load(_rank_folder(folder, ctx) / "replay")
    agent.load_state_dict(state["agent"])
    explorer.load_state_dict(state["explorer"])
    replay.end_episodes()
    torch.set_rng_state(state["rng"]["torch"])
    np_rng.bit_generator.state = state["rng"]["numpy"]
    random.setstate((3, tuple(state["rng"]["python"]), None))
    counters = Counters(**state["counters"])
    counters.restarts += 1
    return counters


def train(
    cfg: Config,
    *,
    agent: Agent,
    envs,
    eval_envs,
    replay: SequenceReplay,
    run: RunDir,
    logger: MetricsLogger,
    spec: ActionSpec,
    counters: Counters | None = None,
    np_rng: np.random.Generator | None = None,
    explorer: RandomAgent | None = None,
    on_evaluate=None,
    ctx: Distributed | None = None,
    eval_also: dict | None = None,
) -> Counters:
    """Run the loop until `cfg.steps` environment steps; returns the final counters.

    `on_evaluate(env_steps, episodes) -> metrics`, if given, runs after each evaluation with the
    evaluation's episodes (`evaluate`'s trace: frames and states, e.g. to probe the latents on the
    agent's own episodes, or to write an imagined-rollout video); what it returns is logged. Under torchrun (`ctx`), steps count every
    rank's environments, each rank makes the same updates (its own batches, all-reduced gradients),
    and rank 0 alone evaluates (`eval_envs` may be None elsewhere).

    `eval_also` (`Config.eval_also`: label -> vector envs like `eval_envs`, of another env or
    perturbed) plays each evaluation again in each of them, from the same episode seeds and planner
    noise as the clean one, and logs `eval/<label>/return`; the clean evaluation's noise goes on as
    if they had not been played, so neither it nor the training changes.
    """
    ctx = ctx or Distributed()
    c = counters or Counters()
    np_rng = np_rng or np.random.default_rng(cfg.seed)
    explorer = explorer or RandomAgent(spec, seed=cfg.seed)
    # Each (re)start resets the envs with fresh seeds: episodes in flight at a kill are not resumable.
    collector = Collector(envs, spec, replay, cfg.action_repeat, seed=cfg.seed + 10_007 * c.restarts)
    agent.reset(torch.ones(envs.num_envs, dtype=torch.bool))
    pending: dict[str, list[float]] = {}
    log_clock, log_steps = time.time(), c.env_steps

    bar = tqdm(total=cfg.steps, initial=min(c.env_steps, cfg.steps), unit="step", dynamic_ncols=True,
               disable=None if ctx.main else True, desc=f"{cfg.env} {cfg.exp}")
    acting = False
    with StopOnSignal() as stop:
        while c.env_steps < cfg.steps:
            if not acting and c.env_steps >= cfg.seed_steps:
                # The agent takes over mid-episode: its frame window starts from the current frame.
                agent.reset(torch.ones(envs.num_envs, dtype=torch.bool))
                acting = True
            policy = agent if acting else explorer
            result = collector.step(policy.act(collector.observation(), eval=False))
            before = c.env_steps
            # Steps of all ranks, and whether any rank cannot sample yet: every rank must agree on both,
            # or their updates (each an all-reduce) would fall out of step.
            steps, episodes, not_ready, stopping = ctx.sum(result.env_steps, len(result.episodes),
                                                           not replay.can_sample(), stop.requested)
            c.env_steps += steps
            c.episodes += episodes
            c.agent_steps += 1
            bar.update(steps)
            for episode_return, length in result.episodes:  # rank 0's episodes (the others' logger is silent)
                logger.log(c.env_steps, {"train/episode_return": episode_return, "train/episode_length": length})
            if result.first.any():
                # A new episode's first frame: the agent refills its frame window and forgets its plan.
                agent.reset(result.first)

            if c.env_steps >= cfg.seed_steps and not_ready == 0:
                if c.updates == 0:
                    # One burst on the seed data first, so the agent's first plans use a trained model.
                    c.update_credit += cfg.seed_updates
                c.update_credit += cfg.updates_per_step * steps / (cfg.action_repeat * ctx.world)
                while c.update_credit >= 1.0:
                    try:
                        metrics = agent.update(replay.sample(cfg.batch_size))
                    except NonFiniteLossError as e:  # say it in the loop's own unit, as the logs do
                        raise NonFiniteLossError(e.detail, f"environment step {c.env_steps} ({e.where})") from None
                    c.updates += 1
                    c.update_credit -= 1.0
                    for k, v in metrics.items():
                        pending.setdefault(k, []).append(v)

            if c.env_steps // cfg.log_every > before // cfg.log_every:
                record = {k: float(np.mean(v)) for k, v in pending.items()}
                now = time.time()
                record.update({"train/updates": c.updates, "train/episodes": c.episodes,
                               "train/steps_per_second": (c.env_steps - log_steps) / max(now - log_clock, 1e-9)})
                logger.log(c.env_steps, record)
                pending.clear()
                log_clock, log_steps = now, c.env_steps
            evaluation_due = c.env_steps // cfg.eval_every > before // cfg.eval_every or c.env_steps >= cfg.steps
            if evaluation_due and ctx.main:
                trace = [] if on_evaluate is not None else None
                clock, eval_seed = time.perf_counter(), cfg.seed + 1_000_003 + c.env_steps
                noise = agent.eval_streams() if eval_also else None
                scores = evaluate(agent, eval_envs, spec, cfg.eval_episodes, seed=eval_seed, trace=trace)
                record = {"eval/return": scores.mean(), "eval/return_std": scores.std(),
                          "eval/episodes_per_second": len(scores) / (time.perf_counter() - clock)}
                if eval_also:
                    after = agent.eval_streams()
                    for label, also_envs in eval_also.items():
                        agent.set_eval_streams(noise)  # the clean evaluation's planner noise, for a paired return
                        shifted = evaluate(agent, also_envs, spec, cfg.eval_episodes, seed=eval_seed)
                        record.update({f"eval/{label}/return": shifted.mean(), f"eval/{label}/return_std": shifted.std()})
                    agent.set_eval_streams(after)
                logger.log(c.env_steps, record)
                bar.set_postfix(eval_return=f"{scores.mean():.1f}")
                if on_evaluate is not None:
                    logger.log(c.env_steps, on_evaluate(c.env_steps, trace))
            due = c.env_steps // cfg.checkpoint_every > before // cfg.checkpoint_every or c.env_steps >= cfg.steps
            if due or stopping:
                _checkpoint(run, cfg, c, agent, explorer, replay, np_rng, ctx)
            if stopping:
                bar.close()
                raise Interrupted(stop.signal or signal.SIGTERM, c.env_steps, run.latest_checkpoint())
    bar.close()
    if c.updates == 0 and c.env_steps > cfg.seed_steps and ctx.main:
        print(f"warning: no update in {c.env_steps} environment steps: no stored episode reached the "
              f"{cfg.sample_len} frames a sequence needs (seq_len + history - 1); lower seq_len.", file=sys.stderr)
    return c
