"""The encoders shipped with the package: list them, or ship a pretraining run's encoder as one.

    python scripts/encoders.py                                  # what exists: envs, objective, size, probe R²
    python scripts/encoders.py ship=runs/pre name=dmc [note=...]  # add runs/pre/encoder.pt as pretrained:dmc
    python scripts/transfer.py encoder=pretrained:dmc env=dm_control/hopper-stand-v0 mode=finetune

A shipped encoder is an `encoder.pt` of scripts/pretrain.py (at most 2 MB) in worldmodel/weights/,
with an entry in worldmodel/weights/index.json: its source envs, objective, image size, the conv
encoder's activation (a run that loads it takes its shape keys, this one included), parameters,
the probe R² of its last pretraining probe, its SHA-256 and the two commands that regenerate it.
`encoder_from=pretrained:<name>` (train.py) or `encoder=pretrained:<name>` (transfer.py) loads it
with `weights_only=True` after checking the hash; a file that does not match is refused.
"""

from __future__ import annotations

import sys

from agents.training.pretrained import SHIPPED, WEIGHTS, ship_encoder, shipped_encoders
from worldmodel.checkpoint import CheckpointError
from worldmodel.cli import parse_keys
from worldmodel.config import ConfigError

KEYS = {
    "ship": (str, "", "a finished scripts/pretrain.py run folder whose encoder.pt to ship"),
    "name": (str, "", "the shipped encoder's name (loaded as pretrained:<name>)"),
    "note": (str, "", "a line recorded beside it (what it is for)"),
}


def listing() -> str:
    """The shipped encoders as a Markdown table."""
    entries = shipped_encoders()
    if not entries:
        return f"no shipped encoders in {WEIGHTS}"
    lines = ["| name | source envs | objective | image | conv activation | params | KB | probe R² (last, mean) "
             "| regenerate |", "|---|---|---|---|---|---|---|---|---|"]
    for name, e in sorted(entries.items()):
        envs = ", ".join(env.removeprefix("dm_control/") for env in e.get("envs", []))
        r2 = e.get("probe_r2", {}).get("probe/r2")
        lines.append(f"| {SHIPPED}{name} | {envs} | {e.get('objective')} | {e.get('image_size')} | "
                     f"{e.get('enc_act', '—')} | "
                     f"{e.get('parameters', 0):,} | {e.get('bytes', 0) / 1e3:.0f} | "
                     f"{'—' if r2 is None else f'{r2:.3f}'} | `{' && '.join(e.get('commands', []))}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "encoders.py")
    try:
        if args["ship"]:
            if not args["name"]:
                raise ConfigError("ship= needs name=<name> (the encoder then loads as pretrained:<name>).")
            entry = ship_encoder(args["ship"], args["name"], note=args["note"])
            print(f"shipped {SHIPPED}{args['name']}: {WEIGHTS / entry['file']} ({entry['bytes'] / 1e3:.0f} KB)")
        print(listing())
    except (CheckpointError, ConfigError, ValueError) as e:
        print(f"encoders.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
