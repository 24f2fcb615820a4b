"""The allocator setting of training processes: where glibc applies it, an update's freed tensors come
back without page faults (without it, a `dmc`-sized update faults thousands of pages in again)."""

import subprocess
import sys
from pathlib import Path

import pytest

from agents.training.memory import retain_freed_memory

ROOT = Path(__file__).resolve().parents[2]

UPDATES = """
import resource, sys, torch
import gymnasium as gym
from agents.training.memory import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else None
from agents.analysis.bench.world_model import fill_random
from agents.training.assembly import build_model, build_replay, build_trainer
from worldmodel.actions import ActionSpec
from worldmodel.config import Config
cfg = Config.from_preset("dmc", env="Pendulum-v1", buffer_size=1000)  # dmc sizes: a 14 MB float batch
spec = ActionSpec.from_space(gym.spaces.Box(-1, 1, (1,)))
torch.manual_seed(0)
replay = build_replay(cfg, spec, 0, torch.device("cpu"))
fill_random(replay, rows=200)
trainer = build_trainer(cfg, build_model(cfg, spec, torch.device("cpu")), torch.device("cpu"))
for _ in range(3):  # the heap grows to an update's working set
    trainer.update(replay.sample(cfg.batch_size))
faults = []
for _ in range(7):  # the median: a one-off growth of the heap (one update in a few, ~2,000 pages) is not the claim
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    trainer.update(replay.sample(cfg.batch_size))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(applied, sorted(faults)[len(faults) // 2])
"""


def faults_per_update(mode: str) -> tuple[str, int]:
    proc = subprocess.run([sys.executable, "-c", UPDATES, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    applied, faults = proc.stdout.split()[-2:]
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_an_update_reuses_freed_memory_instead_of_faulting_it_in_again():
    applied, faults = faults_per_update("retain")
    if applied != "True":
        pytest.skip("not glibc: the allocator is left as it was")
    _, default_faults = faults_per_update("default")
    # measured here: a median of 0 against 8,000-16,000 (the mean over five updates was 0 or 410 from run to run)
    assert faults < 200 and default_faults > 10 * max(faults, 100)


def test_it_says_whether_it_applied():
    assert isinstance(retain_freed_memory(), bool)
