"""Check that a refactor kept behaviour: fixed-seed debug runs of train.py, pretrain.py and
transfer.py must log exactly the numbers recorded in docs/results/behaviour/snapshot.json.

    python scripts/check_behaviour.py                  # exit 0 when identical, 1 with the differences
    python scripts/check_behaviour.py new_keys=true    # the same, accepting metrics the snapshot lacks
    python scripts/check_behaviour.py record=true      # record a new snapshot (after an intended change)

About 40 s on one core. See agents/analysis/behaviour.py for what is compared and why.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from agents.analysis.behaviour import differences, load_snapshot, run_all, save_snapshot
from agents.analysis.results import ROOT
from worldmodel.cli import parse_keys

KEYS = {
    "record": (bool, False, "write a new snapshot instead of comparing with it"),
    "new_keys": (bool, False, "accept metrics the snapshot lacks (a change that only logs more)"),
    "snapshot": (str, str(ROOT / "docs" / "results" / "behaviour" / "snapshot.json"), "the snapshot file"),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "check_behaviour.py")
    with tempfile.TemporaryDirectory() as work:
        runs = run_all(ROOT, Path(work))
    snapshot = Path(args["snapshot"])
    if args["record"]:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        save_snapshot(snapshot, runs, f"recorded at {commit or 'an unknown commit'} (plus any uncommitted changes)")
        print(f"recorded {snapshot}: " + ", ".join(f"{k} {len(v)} records" for k, v in runs.items()))
        return 0
    found = differences(load_snapshot(snapshot), runs, new_keys=args["new_keys"])
    if found:
        print("behaviour changed:\n  " + "\n  ".join(found))
        return 1
    print("identical: " + ", ".join(f"{k} ({len(v)} records)" for k, v in runs.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
