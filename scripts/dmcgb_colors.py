"""What DMC-GB's shipped colour sets are: read `color_easy.pt` and `color_hard.pt` from a copy of its
repository (you fetch it; nothing is downloaded here) and report how they move each colour from the
DeepMind Control suite's defaults, beside the same statistics of our `color_easy` / `color_hard` draws.
This is how `envs/dmc_colors.py`'s DMC-GB modes were fitted (2026-12-07).

    python scripts/dmcgb_colors.py dir=<dmcontrol-generalization-benchmark>/src/env/data [draws=2000]

Writes docs/results/dmcgb_colors.json. The files are loaded with `weights_only=True`, allowing only the
numpy array types they hold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from agents.analysis import results
from envs.dmc_colors import DMCGB_SD, colour_set_stats, default_colors, draw_colors
from worldmodel.cli import parse_keys

KEYS = {
    "dir": (str, "", "the folder holding DMC-GB's color_easy.pt and color_hard.pt (its src/env/data)"),
    "draws": (int, 2000, "episode seeds of our own draws to compare with"),
}
NUMPY_GLOBALS = [(np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
                 np._core.multiarray._reconstruct, np.ndarray, (np.dtype, "numpy.dtype"), np.dtype,
                 (type(np.dtype("float64")), "numpy.dtypes.Float64DType")]
"""The globals a pickled list of float64 numpy arrays needs, under the names numpy 1 (DMC-GB's files)
and numpy 2 write them."""


def load_sets(path: Path) -> list[dict]:
    """DMC-GB's colour sets from `path`, `[{key: (3,) float}]`; a ValueError naming the problem otherwise."""
    if not path.is_file():
        raise ValueError(f"no {path}: pass dir= the folder with DMC-GB's color_easy.pt and color_hard.pt.")
    try:
        with torch.serialization.safe_globals(NUMPY_GLOBALS):
            sets = torch.load(path, weights_only=True)
    except Exception as e:  # a corrupt file, or one holding other types
        raise ValueError(f"{path} is not a list of colour sets that loads with weights_only=True "
                         f"({type(e).__name__}): fetch DMC-GB's file again.") from None
    if not isinstance(sets, list) or not sets or not all(isinstance(s, dict) for s in sets):
        raise ValueError(f"{path} holds {type(sets).__name__}, not a list of colour sets: is it DMC-GB's color_*.pt?")
    return sets


def main(argv: list[str]) -> int:
    args = parse_keys(argv, KEYS, "dmcgb_colors.py")
    from dm_control.suite import cartpole  # every domain shares common/materials.xml and skybox.xml

    defaults = default_colors(dict(cartpole.get_model_and_assets()[1]))
    try:
        shipped_sets = {mode: load_sets(Path(args["dir"]) / f"{mode}.pt") for mode in DMCGB_SD}
    except ValueError as e:
        print(f"dmcgb_colors.py: error: {e}", file=sys.stderr)
        return 2
    report = {}
    for mode in DMCGB_SD:
        shipped = colour_set_stats(shipped_sets[mode], defaults)
        ours = colour_set_stats([draw_colors(mode, seed, defaults) for seed in range(args["draws"])], defaults)
        report[mode] = {"dmcgb": shipped, "ours": ours}
        for who, stats in (("DMC-GB", shipped), ("ours", ours)):
            print(f"{mode:10s} {who:6s} sets {stats['sets']:5d}  moves {', '.join(stats['changed'])}  "
                  f"mean {stats['mean']:+.3f}  sd {stats['sd']:.3f}  kurtosis {stats['kurtosis']:.2f}  "
                  f"largest {stats['largest_move']:.3f}  clipped {stats['clipped']:.2f}  "
                  f"|r| <= {stats['largest_correlation']:.2f}  grid rgb2-rgb1 {np.round(stats.get('grid_offset', []), 3).tolist()}")
    out = results.RESULTS / "dmcgb_colors.json"
    out.write_text(json.dumps({"command": results.command_line(), "machine": results.machine(), **report},
                              indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
