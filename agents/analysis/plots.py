"""Learning curves of run folders: one panel per metric, several runs overlaid.

    runs = {"both": load_metrics("runs/a"), "contrastive": load_metrics("runs/b")}
    plot_runs(runs, select_keys(runs, DEFAULT_KEYS), "curves.png", smooth=0.6)

Works for any run folder with a `metrics.jsonl` (train.py: x = environment steps; pretrain.py:
x = updates); a metric missing from a run is simply not drawn for it.
"""

from __future__ import annotations

import fnmatch
import math
import os
from pathlib import Path
from typing import Any

DEFAULT_KEYS = ("eval/return", "eval/*/return", "train/episode_return", "loss/*", "probe/r2", "imagine/*")
"""Metric patterns drawn by default (`fnmatch` style), in this order."""
_AXIS_KEYS = ("step", "time")


def select_keys(runs: dict[str, list[dict[str, Any]]], patterns: tuple[str, ...] | list[str] = DEFAULT_KEYS
                ) -> list[str]:
    """Metric names of any of `runs` matching `patterns`, in pattern order (sorted within a pattern)."""
    present = sorted({key for records in runs.values() for r in records for key in r} - set(_AXIS_KEYS))
    keys: list[str] = []
    for pattern in patterns:
        keys += [k for k in present if fnmatch.fnmatchcase(k, pattern) and k not in keys]
    if not keys:
        raise ValueError(f"no metric matches {', '.join(patterns)}; the runs log: {', '.join(present) or 'nothing yet'}.")
    return keys


def plot_runs(runs: dict[str, list[dict[str, Any]]], keys: list[str], path: str | Path, x: str = "step",
              smooth: float = 0.0) -> Path:
    """One panel per metric in `keys`, one line per run (labelled by its key in `runs`), to `path`.

    Args:
        runs: label -> metric records (from `load_metrics`).
        keys: metric names (from `select_keys`).
        path: image file (.png, .pdf or .svg), written under a temporary name, then renamed.
        x: "step" (environment steps or updates) or "time" (minutes of wall clock).
        smooth: exponential-moving-average weight in [0, 1): 0 draws the raw values; above it the
            raw values stay faint behind the smoothed line.

    `eval/return` is drawn with a ± `eval/return_std` band where logged; losses that span more than
    a factor of 20 use a log scale.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"out={path.name}: write a .png, .pdf or .svg file.")
    if x not in _AXIS_KEYS:
        raise ValueError(f"x={x!r} is not valid: choose step or time.")
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth={smooth} must be in [0, 1).")
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes.flat, keys):
        low, high = math.inf, -math.inf
        for i, (label, records) in enumerate(runs.items()):
            points = [(r[x] / (60.0 if x == "time" else 1.0), r[key], r.get(key + "_std"))
                      for r in records if key in r and x in r and _finite(r[key])]
            if not points:
                continue
            xs, ys, stds = zip(*points)
            low, high = min(low, min(ys)), max(high, max(ys))
            colour = colours[i % len(colours)]
            if smooth > 0:
                ax.plot(xs, ys, color=colour, alpha=0.25, linewidth=1)
                ax.plot(xs, _ema(ys, smooth), color=colour, label=label, linewidth=1.6)
            else:
                ax.plot(xs, ys, color=colour, label=label, linewidth=1.4, marker="." if len(xs) < 30 else None)
            if all(s is not None for s in stds):
                ax.fill_between(xs, [y - s for y, s in zip(ys, stds)], [y + s for y, s in zip(ys, stds)],
                                color=colour, alpha=0.15, linewidth=0)
        if key.startswith("loss/") and low > 0 and high > 20 * low:  # losses spanning decades
            ax.set_yscale("log")
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("minutes" if x == "time" else "step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat:  # the first panel may lack a run; take the fullest legend
        h, lab = ax.get_legend_handles_labels()
        if len(lab) > len(labels):
            handles, labels = h, lab
    if labels:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4), fontsize=9,
                   bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.97 if rows > 1 else 0.92))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _ema(values, weight: float) -> list[float]:
    out, average = [], values[0]
    for v in values:
        average = weight * average + (1 - weight) * v
        out.append(average)
    return out


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (files only, no display), imported on first use so
    that importing this module stays cheap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """Write `fig` to `path` (its folder made if missing) at `dpi`, and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=dpi)
    finally:
        pyplot().close(fig)
    return path
