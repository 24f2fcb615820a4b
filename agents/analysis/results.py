"""Benchmark results: each bench script saves JSON under docs/results/, and the tables of the
README and docs/*.md are rebuilt from whatever JSON exists (so a long benchmark can fill them in
piece by piece).

    python scripts/results.py          # rebuild the result tables from docs/results/*.json

A table lives between `<!-- results:NAME -->` and `<!-- /results:NAME -->` in any of those pages;
NAME is the JSON file's stem, and the table is rendered from that file's "table" entry (columns + rows).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from agents.analysis.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (this file is agents/analysis/results.py)."""
DEFAULT_RESULTS = ROOT / "docs" / "results"
RESULTS = Path(os.environ.get("PIXELWORLD_RESULTS") or DEFAULT_RESULTS).resolve()
"""Where results go; `PIXELWORLD_RESULTS=<folder>` sends them elsewhere and leaves the README alone
(what the smoke tests of the bench scripts do)."""


def split_preset(label: str) -> tuple[str, dict[str, str]]:
    """`"cpu+samples=128+horizon=3"` -> `("cpu", {"samples": "128", "horizon": "3"})`: a preset with
    config overrides, the way the benchmarks name an ablation (`"cpu"` alone: no overrides)."""
    preset, *pairs = label.split("+")
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{label!r}: write a preset with overrides as preset+key=value+key=value.")
        overrides[key] = value
    return preset, overrides


def bad_argument(message: str) -> SystemExit:
    """Print `<script>: error: message` and return the exit (status 2, as `parse_keys`) to raise."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    return SystemExit(2)


def int_list(key: str, value: str) -> list[int]:
    """`"0,1,2"` -> `[0, 1, 2]` for the list-valued keys of the bench scripts; a clear exit otherwise."""
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise bad_argument(f"{key}={value!r}: give whole numbers separated by commas, e.g. {key}=0,1,2.") from None


def parts(key: str, value: str, names: tuple[str, ...]) -> list[str]:
    """`"Pendulum-v1:both:0"` -> its `len(names)` colon-separated parts (e.g. `only=`); a clear exit otherwise.
    The last part is a seed where the last name is "seed", and must be a whole number. A middle part
    may itself hold colons (a variant `dmc+encoder_from=pretrained:dmc`): the first and the last
    `len(names) - 2` parts are split off, the rest is the middle one."""
    pieces = value.split(":")
    if len(names) >= 3 and len(pieces) > len(names):
        tail = len(names) - 2
        pieces = [pieces[0], ":".join(pieces[1:-tail]), *pieces[-tail:]]
    if len(pieces) != len(names) or not all(pieces) or (names[-1] == "seed" and not pieces[-1].lstrip("-").isdigit()):
        raise bad_argument(f"{key}={value!r}: write it as {key}=" + ":".join(f"<{n}>" for n in names) + ".")
    return pieces


def ci95(values: list[float]) -> float:
    """Half-width of a 95% Student-t interval of the mean (0 for a single value)."""
    if len(values) < 2:
        return 0.0
    t = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 9: 2.31, 10: 2.26}.get(len(values), 1.96)
    return t * statistics.stdev(values) / math.sqrt(len(values))


def mean_ci(values: list[float], digits: int = 0) -> str:
    """`"mean ± 95% CI half-width"` for a table cell; the mean alone for one value, "–" for none."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {ci95(values):.{digits}f}"


def median_seconds(fn, repeats: int, warmup: int = 3, sync=lambda: None) -> float:
    """Median wall-clock seconds of `fn()` over `repeats` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def frames_to(curve: list[tuple[int, float]], level: float) -> int | None:
    """The first evaluation's step count in `curve`, (steps, return) points, whose return reaches `level`
    (None: never)."""
    return next((steps for steps, ret in curve if ret >= level), None)


def curve_auc(curve: list[tuple[int, float]]) -> float:
    """Mean eval return over training of `curve`, (steps, return) points: trapezoids between
    evaluations, from the first one."""
    if len(curve) < 2:
        return curve[0][1]
    area = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(curve, curve[1:]))
    return area / (curve[-1][0] - curve[0][0])


def machine() -> dict:
    """Where a figure was measured: CPU model, cores, torch version, GPU if any, and the package's commit."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    commit = code_commit()
    if commit:
        info["commit"] = commit
    return info


CODE_PATHS = ("agents", "envs", "worldmodel", "scripts", "pyproject.toml")
"""What makes a figure: a change elsewhere (the docs and result files benchmarks rewrite, tests) is not `+changes`."""


def code_commit() -> str | None:
    """The checkout's commit (short hash), `+changes` when tracked files under `CODE_PATHS` differ from
    it; None outside git. A figure records which code made it, e.g. across a change of rendering that
    no config key names."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=20, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if changed else "")


def save(name: str, table: dict, raw: dict, command: str, folder: Path = RESULTS, readme: bool = True) -> Path:
    """Write `{folder}/{name}.json` and, when that is docs/results itself, refresh the result tables
    of the README and docs/*.md (`readme=False`: not even then)."""
    path = write(name, table, raw, command, folder)
    if readme and folder.resolve() == DEFAULT_RESULTS:
        update_docs()
    print(f"wrote {path}")
    return path


def write(name: str, table: dict, raw: dict, command: str, folder: Path = RESULTS) -> Path:
    """Write `{folder}/{name}.json` (what `save` writes) without touching the README."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"command": command, "machine": machine(), "table": table, "raw": raw}, indent=2))
    return path


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process so far, in MiB: on CUDA the most `device` memory tensors held
    (`torch.cuda.max_memory_allocated`); on CPU the peak resident set (`ru_maxrss`: Python, torch
    and every allocation, not only tensors; child processes such as env workers are not counted)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB


def run_json(cmd: list[str], what: str) -> dict:
    """Run one benchmark case in its own process (its own peak memory, no state left from other
    cases) and parse the JSON object it prints last; a failure stops with its stderr."""
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"case {what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def eval_curve(run_dir: Path, steps: int) -> list[tuple[int, float, float]]:
    """(environment step, seconds, eval return) of each evaluation of a finished training run folder."""
    records = read_metrics(Path(run_dir) / "metrics.jsonl")
    curve = [(r["step"], r["time"], r["eval/return"]) for r in records if "eval/return" in r]
    if not curve or curve[-1][0] < steps:
        raise SystemExit(f"{run_dir} has not reached {steps} environment steps yet.")
    return curve


def render(result: dict) -> str:
    table = result["table"]
    cols = table["columns"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table["rows"]]
    m = result["machine"]
    where = m.get("gpu") or f"{m['cpu']}, {m['threads']} threads"
    lines.append("")
    commit = f", commit {m['commit']}" if m.get("commit") else ""
    lines.append(f"<sub>`{result['command']}` on {where}, torch {m['torch']}, {m['date']}{commit}.</sub>")
    return "\n".join(lines)


def update_docs(root: Path = ROOT) -> list[Path]:
    """Rebuild every result table of the docs from `RESULTS/*.json`: in `README.md` and in every
    `docs/*.md` under `root`, each table between `<!-- results:NAME -->` and
    `<!-- /results:NAME -->` becomes `render` of `NAME.json` (a table may stand on several pages;
    markers without a JSON, and everything outside the markers, stay as they are). Writes only the
    pages whose text changed, and returns them."""
    tables: dict[str, str] = {}  # rendered on first use: a JSON without a marker anywhere may hold no table
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    changed = []
    for page in pages:
        if not page.is_file():
            continue
        text = new = page.read_text()
        for path in sorted(RESULTS.glob("*.json")):
            name = path.stem
            pattern = re.compile(rf"(<!-- results:{re.escape(name)} -->\n).*?(<!-- /results:{re.escape(name)} -->)",
                                 re.DOTALL)
            if pattern.search(new):
                if name not in tables:
                    tables[name] = render(json.loads(path.read_text()))
                table = tables[name]
                new = pattern.sub(lambda m, table=table: m.group(1) + table + "\n" + m.group(2), new)
        if new != text:
            page.write_text(new)
            changed.append(page)
    return changed



THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""What sets the torch (intra-op) threads of a process: a piece's command names those it ran with."""


def command_line(with_threads: bool = False) -> str:
    """This process's command line, as `python scripts/...`; `with_threads`: prefixed by the
    `THREAD_VARIABLES` set in its environment (`OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python ...`)."""
    threads = [f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if with_threads and name in os.environ]
    script = str(Path(sys.argv[0]).relative_to(ROOT)) if Path(sys.argv[0]).is_absolute() else sys.argv[0]
    return " ".join([*threads, "python", script, *sys.argv[1:]])


def device_sync(device: torch.device) -> Callable[[], None]:
    """What a timing waits on before reading the clock: `torch.cuda.synchronize` on CUDA (kernels run
    asynchronously), nothing elsewhere."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def slug(env: str) -> str:
    """An env id as it stands in file and folder names (`ALE/Pong-v5` -> `ALE-Pong-v5`)."""
    return env.replace("/", "-")


def run_script(name: str, *args: str) -> None:
    """Run `scripts/{name}.py` with `key=value` arguments in its own process (its own threads and
    random state, as a user would run it); a failure stops the benchmark with one line (the script
    printed its own error above it). A script stopped by a signal (128 + its number: SIGINT, SIGTERM)
    has checkpointed: the benchmark stops too, saying that the same command resumes it."""
    code = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], check=False).returncode
    if code > 128:
        raise SystemExit(f"{name}.py was stopped by signal {code - 128} after writing a checkpoint; run the same "
                         "benchmark command again to resume it.")
    if code != 0:
        raise SystemExit(f"{name}.py {' '.join(args)} failed with exit status {code} (its error is printed above).")


def resumable(run_dir: Path) -> bool:
    """Whether `run_dir` holds a checkpoint a script can resume from (`resume=true`)."""
    return (Path(run_dir) / "checkpoints" / "latest").exists()


def load_pieces(folder: Path, key: Callable[[dict], tuple]) -> dict[tuple, list[dict]]:
    """The pieces a resumable benchmark saved under `folder` (one JSON each), grouped by `key(piece)`
    (a tuple, e.g. env, preset, objective, steps): the rows of its table, the seeds within a row."""
    groups: dict[tuple, list[dict]] = {}
    for path in sorted(Path(folder).glob("*.json")):
        piece = json.loads(path.read_text())
        groups.setdefault(key(piece), []).append(piece)
    return groups


def piece_names(folder: Path) -> dict:
    """The raw entry of a resumable benchmark's JSON: the names of the pieces its table was built from."""
    return {"pieces": sorted(p.name for p in Path(folder).glob("*.json"))}


def write_piece(path: Path, piece: dict) -> None:
    """Save one piece of a resumable benchmark as JSON at `path` (its folder made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(piece, indent=2))


def piece_jobs(only: str, seeds: str, firsts: list[str], seconds: list[str], names: tuple[str, str]
               ) -> list[tuple[str, str, int]]:
    """The pieces `(first, second, seed)` a resumable benchmark is asked for: just `only`, written
    `<first>:<second>:<seed>` with `names` naming the first two (e.g. `Pendulum-v1:both:0`), when
    given; else every first with every second, for each seed of the comma-separated `seeds` in turn."""
    if only:
        first, second, seed = parts("only", only, (*names, "seed"))
        return [(first, second, int(seed))]
    return [(first, second, seed) for seed in int_list("seeds", seeds) for first in firsts for second in seconds]
