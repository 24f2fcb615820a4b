"""Proof that a change kept behaviour: fixed-seed `debug` runs of train.py, pretrain.py and
transfer.py, their `metrics.jsonl` numbers compared with a recorded snapshot.

    python scripts/check_behaviour.py                 # run the commands, compare with the snapshot
    python scripts/check_behaviour.py record=true     # after an intended change: record a new one

Everything a run logs is compared exactly, except what depends on the clock (`time`, rates per
second, compile times). Runs are single-threaded (`OMP_NUM_THREADS=1`), so they are bit-for-bit
repeatable on one machine; another CPU model may round differently (its oneDNN kernels sum in
another order), which is why this is a script run around a refactor rather than a test. The snapshot
records the CPU it was made on; on another one, `rtol=` accepts numbers within that relative
tolerance, and the largest relative difference found is reported either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agents.analysis.metrics import read_metrics

COMMANDS: dict[str, list[str]] = {
    "train": ["train.py", "preset=debug", "seed=0", "run_dir={work}/train", "tensorboard=false"],
    "train_cartpole": ["train.py", "preset=debug", "seed=1", "env=CartPole-v1", "run_dir={work}/train_cp",
                       "tensorboard=false"],
    "pretrain": ["pretrain.py", "preset=debug", "seed=0", "pretrain_updates=120", "pretrain_probe_every=60",
                 "pretrain_checkpoint_every=60", "pretrain_log_every=20", "run_dir={work}/pre", "tensorboard=false"],
    "transfer": ["transfer.py", "preset=debug", "seed=0", "encoder={work}/pre", "env=CartPole-v1", "mode=finetune",
                 "run_dir={work}/tr", "tensorboard=false"],
}
"""The runs compared, in order (transfer starts from pretrain's encoder); `{work}` is a scratch folder."""


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A metrics record without what depends on the clock."""
    return {k: v for k, v in record.items()
            if k != "time" and "per_second" not in k and not k.startswith("compile/")}


def run_all(root: Path, work: Path) -> dict[str, list[dict[str, Any]]]:
    """Run `COMMANDS` with the scripts under `root`, into `work`; each run's comparable records."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "true"}
    out = {}
    for name, command in COMMANDS.items():
        script, *args = [a.format(work=work) for a in command]
        proc = subprocess.run([sys.executable, str(root / "scripts" / script), *args], env=env, cwd=root,
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{name}: {script} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        run_dir = next(a.split("=", 1)[1] for a in args if a.startswith("run_dir="))
        out[name] = [comparable(r) for r in read_metrics(Path(run_dir) / "metrics.jsonl")]
    return out


def relative_difference(a: Any, b: Any) -> float | None:
    """|a - b| / max(|a|, |b|) for two real numbers (0 when equal); None when either is not one."""
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, numbers) and isinstance(b, numbers)):
        return None
    scale = max(abs(a), abs(b))
    return 0.0 if a == b else abs(a - b) / scale


def largest_difference(expected: dict[str, list[dict]], actual: dict[str, list[dict]]) -> tuple[float, str]:
    """The largest relative difference between numbers both hold, and where it is (`run[i] step: key`)."""
    worst, where = 0.0, ""
    for name in sorted(set(expected) & set(actual)):
        for i, (ra, rb) in enumerate(zip(expected[name], actual[name])):
            for key in sorted(set(ra) & set(rb)):
                d = relative_difference(ra[key], rb[key])
                if d is not None and d > worst:
                    worst, where = d, f"{name}[{i}] step {ra.get('step')}: {key}"
    return worst, where


def differences(expected: dict[str, list[dict]], actual: dict[str, list[dict]], limit: int = 20,
                new_keys: bool = False, rtol: float = 0.0) -> list[str]:
    """Where `actual` differs from `expected`: one line per differing value, record count or run.
    `new_keys=True` accepts metrics the snapshot lacks (a change that only logs more), so that every
    number the snapshot has must still be the same. `rtol > 0` accepts two numbers within that
    relative difference (rounding on another CPU); anything else must be equal."""
    lines: list[str] = []
    for name in sorted(set(expected) | set(actual)):
        a, b = expected.get(name), actual.get(name)
        if a is None or b is None:
            lines.append(f"{name}: only in {'the snapshot' if b is None else 'this run'}")
            continue
        if len(a) != len(b):
            lines.append(f"{name}: {len(a)} records in the snapshot, {len(b)} now")
        for i, (ra, rb) in enumerate(zip(a, b)):
            for key in sorted(set(ra) | (set() if new_keys else set(rb))):
                if ra.get(key) != rb.get(key):
                    close = relative_difference(ra.get(key), rb.get(key))
                    if rtol > 0 and close is not None and close <= rtol:
                        continue
                    lines.append(f"{name}[{i}] step {ra.get('step')}: {key} {ra.get(key)!r} -> {rb.get(key)!r}")
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


def load_snapshot(path: Path) -> dict[str, list[dict]]:
    return json.loads(Path(path).read_text())["runs"]


def snapshot_cpu(path: Path) -> str | None:
    """The CPU model a snapshot was recorded on (None: recorded before snapshots named it, on an AMD EPYC)."""
    return json.loads(Path(path).read_text()).get("cpu")


def save_snapshot(path: Path, runs: dict[str, list[dict]], note: str, cpu: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"note": note, "cpu": cpu, "commands": COMMANDS, "runs": runs}, indent=1))
