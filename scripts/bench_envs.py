"""Pixel environment throughput: steps/s for a few ids, single and vectorised.

    python scripts/bench_envs.py [seconds=3] [ids=Pendulum-v1,CartPole-v1,...] [workers=1,2,4]

Each figure is agent steps/s (action_repeat=1, 64x64 frames, random actions, autoreset
included), counted over `seconds` after a warm-up. Writes docs/results/bench_envs.json and
refreshes the README table. Run it alone: other jobs on the same cores distort it.
"""

from __future__ import annotations

import sys
import time

from envs import make_env, make_vector_env
from worldmodel.config import parse_keys

sys.path.insert(0, __import__("os").path.dirname(__file__))
import results  # noqa: E402

KEYS = {
    "seconds": (float, 3.0, "seconds each figure is counted over, after a warm-up"),
    "ids": (str, "Pendulum-v1,CartPole-v1,Acrobot-v1,MountainCarContinuous-v0", "env ids, comma-separated"),
    "workers": (str, "1,2,4", "vector env sizes, comma-separated (1: the single env only)"),
}


def rate_single(env_id: str, seconds: float) -> float:
    env = make_env(env_id, image_size=64, seed=0)
    env.reset(seed=0)
    steps, start = -20, time.perf_counter()  # the first 20 steps are a warm-up
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
        steps += 1
        if steps == 0:
            start = time.perf_counter()
    env.close()
    return steps / (time.perf_counter() - start)


def rate_vector(env_id: str, workers: int, seconds: float) -> float:
    vec = make_vector_env(env_id, workers, seed=0, asynchronous=True, image_size=64)
    for _ in range(20):
        vec.step(vec.action_space.sample())
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vec.step(vec.action_space.sample())
        steps += workers
    vec.close()
    return steps / (time.perf_counter() - start)


def main(argv: list[str]) -> None:
    args = parse_keys(argv, KEYS, "bench_envs.py")
    seconds = args["seconds"]
    ids = args["ids"].split(",")
    workers = results.int_list("workers", args["workers"])
    raw = {}
    for env_id in ids:
        raw[env_id] = {"single": rate_single(env_id, seconds)}
        for w in workers:
            if w > 1:
                raw[env_id][f"async_{w}"] = rate_vector(env_id, w, seconds)
        print(env_id, {k: round(v) for k, v in raw[env_id].items()}, flush=True)
    cols = ["env (64x64)", "single env"] + [f"async x{w}" for w in workers if w > 1]
    rows = [[env_id] + [f"{v:,.0f}" for v in raw[env_id].values()] for env_id in ids]
    results.save("bench_envs", {"columns": cols, "rows": rows}, raw, results.command_line())


if __name__ == "__main__":
    main(sys.argv[1:])
