"""Pixel environment throughput (`scripts/bench_envs.py`): agent steps/s of one env and of
asynchronous vector envs, 64x64 frames, action_repeat=1, random actions, autoreset included; for
DeepMind Control ids also one env with the suite's own renderer instead of `envs.wrappers.DmcRender`.

    raw = {env_id: env_rates(env_id, [1, 2, 4], seconds=3.0)}    # {"single": .., "async_2": .., "async_4": ..}
    table = env_table(raw, [1, 2, 4])
"""

from __future__ import annotations

import time

from agents.episodes import make_envs, make_single_env
from worldmodel.config import Config

WARMUP_STEPS = 20
"""Steps taken before the clock starts (env start-up, first renders)."""


def env_config(env_id: str) -> Config:
    """How the benchmark opens `env_id`: 64x64 frames and one env step per agent step."""
    return Config.from_preset("cpu", env=env_id, image_size=64, action_repeat=1)


def single_rate(cfg: Config, seconds: float, suite_render: bool = False) -> float:
    """Agent steps/s of one env of `cfg.env` over `seconds`, after a warm-up (`suite_render`: a DeepMind
    Control env rendered by shimmy's own renderer, see `envs.make_env`)."""
    env = make_single_env(cfg, seed=0, suite_render=suite_render)
    env.reset(seed=0)
    steps, start = -WARMUP_STEPS, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
        steps += 1
        if steps == 0:
            start = time.perf_counter()
    env.close()
    return steps / (time.perf_counter() - start)


def vector_rate(cfg: Config, workers: int, seconds: float) -> float:
    """Agent steps/s (summed over envs) of `workers` asynchronous envs of `cfg.env` over `seconds`."""
    vec = make_envs(cfg, workers, seed=0, asynchronous=True)
    for _ in range(WARMUP_STEPS):
        vec.step(vec.action_space.sample())
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(vec.action_space.sample())
        steps += workers
    vec.close()
    return steps / (time.perf_counter() - start)


def env_rates(env_id: str, workers: list[int], seconds: float) -> dict[str, float]:
    """`{"single": steps/s, "async_{w}": steps/s for each w > 1 in workers}` for `env_id`."""
    cfg = env_config(env_id)
    rates = {"single": single_rate(cfg, seconds)}
    for w in workers:
        if w > 1:
            rates[f"async_{w}"] = vector_rate(cfg, w, seconds)
    if env_id.startswith("dm_control/"):
        rates["single_suite_render"] = single_rate(cfg, seconds, suite_render=True)
    return rates


def env_table(raw: dict[str, dict[str, float]], workers: list[int]) -> dict:
    """README table: one row per env id of `raw`, one column per setting (the suite's-renderer column,
    when any id is DeepMind Control's, '–' for the others)."""
    settings = ["single"] + [f"async_{w}" for w in workers if w > 1]
    cols = ["env (64x64)", "single env"] + [f"async x{w}" for w in workers if w > 1]
    if any("single_suite_render" in rates for rates in raw.values()):
        settings.append("single_suite_render")
        cols.append("single env, the suite's renderer")
    rows = [[env_id] + [f"{rates[k]:,.0f}" if k in rates else "–" for k in settings] for env_id, rates in raw.items()]
    return {"columns": cols, "rows": rows}
