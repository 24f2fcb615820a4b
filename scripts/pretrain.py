"""Pretrain a world model offline on pixel episodes, logging every loss term and the linear probe.

    python scripts/pretrain.py env=Pendulum-v1 objective=contrastive pretrain_updates=2000 precision=bf16 run_dir=runs/pre
    python scripts/pretrain.py replay_from=runs/x/checkpoints/step_000020000/replay pretrain_updates=5000
    python scripts/pretrain.py run_dir=runs/pre resume=true pretrain_updates=4000

Pretraining counts gradient updates: `pretrain_updates`, with `pretrain_log_every`,
`pretrain_probe_every` and `pretrain_checkpoint_every` (train.py's `steps`-counted keys are refused). Data: `collect_steps` environment steps of uniformly random
actions (or a saved replay with `replay_from=`). The probe: `probe_episodes` separate random
episodes, a ridge regression from latents to the env's state scored 4-fold cross-validated over them;
`probe/r2` is logged at update 0 and every `pretrain_probe_every` updates. Writes `world_model.pt` and
`encoder.pt` (loadable with `WorldModel.load` / `WorldModel.load_encoder`) into the run folder.
"""

from __future__ import annotations

import sys

from agents.training.pretrain import run_pretraining


def main(argv: list[str] | None = None) -> int:
    return run_pretraining("pretrain.py", sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
