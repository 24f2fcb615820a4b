"""Train an agent on a new environment, starting from a pretrained encoder.

    python scripts/transfer.py encoder=runs/pre env=CartPole-v1 mode=frozen steps=10000 seed=0 run_dir=runs/t
    python scripts/transfer.py encoder=runs/pre/encoder.pt env=Pendulum-v1 mode=finetune encoder_lr_scale=0.3
    python scripts/transfer.py env=CartPole-v1 mode=scratch              # the baseline: a fresh encoder
    python scripts/transfer.py run_dir=runs/t resume=true                 # continue a stopped run

`encoder=` is a run folder (of train.py or pretrain.py), an `encoder.pt` or a `world_model.pt`.
`mode=`: frozen (the encoder never changes), finetune (its own learning rate, encoder_lr_scale * lr),
init (trained like the rest) or scratch (no transfer). The dynamics, reward, value and policy heads
are built fresh for the target's action space (continuous or discrete). The encoder's shape keys
(image_size, history, widths) come from the encoder; setting one to another value is an error.

Logs like train.py, plus `probe/r2` at step 0: how well a linear probe reads the target env's state
from the (transferred or fresh) encoder before any training. Every other key is a train.py key.
"""

from __future__ import annotations

import sys

from agents.training.assembly import resolve_config
from agents.training.session import probe_before_training, run_training
from worldmodel.cli import split_pairs
from worldmodel.config import ConfigError, coerce

MODES = ("frozen", "finetune", "init", "scratch")


def config_args(argv: list[str]) -> list[str]:
    """train.py's arguments for a transfer command line (`encoder=` and `mode=` translated)."""
    pairs = split_pairs(argv)
    if coerce("resume", pairs.get("resume", "false")):
        # A resumed run keeps its saved config, encoder and mode included.
        for key in ("mode", "encoder"):
            if key in pairs:
                raise ConfigError(f"{key}= cannot change when resuming: the run keeps the encoder and mode it "
                                  f"started with; drop {key}= (or start a new run_dir).")
        return argv
    mode = pairs.pop("mode", "finetune")
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not valid: choose one of {', '.join(MODES)}.")
    encoder = pairs.pop("encoder", "")
    if mode != "scratch" and not encoder:
        raise ConfigError(f"mode={mode} needs encoder=<run folder, encoder.pt or world_model.pt>; "
                          "mode=scratch trains without one.")
    if mode != "scratch":
        pairs.update(encoder_from=encoder, encoder_mode=mode)
    pairs.setdefault("exp", f"transfer_{mode}")
    return [f"{key}={value}" for key, value in pairs.items()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("help", "-h", "--help") for a in argv):
        print(__doc__)
        return 0
    return run_training("transfer.py", lambda: resolve_config(config_args(argv)), probe_before_training)


if __name__ == "__main__":
    raise SystemExit(main())
