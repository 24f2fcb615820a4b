"""Train an agent online from pixels and leave a run folder.

    python scripts/train.py                                   # cpu preset, pixel Pendulum-v1
    python scripts/train.py preset=debug env=CartPole-v1 seed=3 run_dir=runs/x
    python scripts/train.py run_dir=runs/x resume=true         # continue a stopped run
    python scripts/train.py help                               # every key, with its doc
    python scripts/train.py encoder_from=runs/pre encoder_mode=frozen env=CartPole-v1   # reuse an encoder
    torchrun --nproc_per_node=2 scripts/train.py preset=debug device=cpu               # DDP, one process per rank

The agent plans in the world model's latent space (`planner=mppi|cem`), after `seed_steps` of
uniformly random actions; the world model (and its value head and policy prior) trains online from
the replay. Checkpoints hold everything needed to resume exactly: model, optimiser, scaler,
replay, counters and RNG states.
"""

from __future__ import annotations

import sys

from agents.training.assembly import resolve_config
from agents.training.session import TrainingSession, probe_before_training, run_training


def probe_a_transferred_encoder(session: TrainingSession) -> None:
    """With `encoder_from=`, log `probe/r2` at step 0: what the transferred encoder reads of the new
    env's state before any training (as transfer.py does for every run)."""
    if session.cfg.encoder_from:
        probe_before_training(session)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_training("train.py", lambda: resolve_config(argv), probe_a_transferred_encoder)


if __name__ == "__main__":
    raise SystemExit(main())
