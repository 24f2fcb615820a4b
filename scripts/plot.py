"""Plot learning curves (return, losses, probe R², imagination error) of one or several run folders.

    python scripts/plot.py run_dir=runs/x                       # -> runs/x/plots/learning_curves.png
    python scripts/plot.py run_dir=runs/a,runs/b out=compare.png smooth=0.6
    python scripts/plot.py run_dir=runs/a keys='loss/*,probe/r2' x=time

Several folders are overlaid, one colour per run, labelled by folder name (or `labels=`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from agents.analysis.metrics import load_metrics
from agents.analysis.plots import DEFAULT_KEYS, plot_runs, select_keys
from worldmodel.cli import parse_keys
from worldmodel.config import ConfigError

KEYS = {
    "run_dir": (str, ..., "run folder(s), comma-separated to overlay several"),
    "out": (str, "", ("image file, .png/.pdf/.svg (default: <run_dir>/plots/learning_curves.png for one run, "
                      "learning_curves.png here for several)")),
    "keys": (str, ",".join(DEFAULT_KEYS), "metrics to draw, comma-separated, * wildcards"),
    "labels": (str, "", "legend names, comma-separated, one per run (default: folder names)"),
    "x": (str, "step", "x axis: step (environment steps; updates for pretraining) or time (minutes)"),
    "smooth": (float, 0.0, "exponential moving average weight in [0, 1); raw values stay faint behind"),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "plot.py")
    try:
        folders = [Path(p) for p in args["run_dir"].split(",") if p]
        if not folders:
            raise ConfigError("run_dir= names no folder.")
        labels = [label for label in args["labels"].split(",") if label] or _names(folders)
        if len(labels) != len(folders):
            raise ConfigError(f"labels= names {len(labels)} runs, run_dir= {len(folders)}.")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"two runs share a label ({', '.join(labels)}): pass labels=.")
        runs = {label: load_metrics(folder) for label, folder in zip(labels, folders)}
        keys = select_keys(runs, [k for k in args["keys"].split(",") if k])
        default = folders[0] / "plots" / "learning_curves.png" if len(folders) == 1 else Path("learning_curves.png")
        path = plot_runs(runs, keys, Path(args["out"]) if args["out"] else default, x=args["x"],
                         smooth=args["smooth"])
    except (ConfigError, ValueError) as e:
        print(f"plot.py: error: {e}", file=sys.stderr)
        return 2
    print(f"plot: {path}  ({len(keys)} metrics, {len(runs)} run{'s' if len(runs) > 1 else ''})")
    return 0


def _names(folders: list[Path]) -> list[str]:
    """Folder names, with their parents where two names clash."""
    names = [f.resolve().name for f in folders]
    if len(set(names)) == len(names):
        return names
    return [f"{f.resolve().parent.name}/{f.resolve().name}" for f in folders]


if __name__ == "__main__":
    raise SystemExit(main())
