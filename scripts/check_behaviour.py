"""Check that a refactor kept behaviour: fixed-seed debug runs of train.py, pretrain.py and
transfer.py must log exactly the numbers recorded in docs/results/behaviour/snapshot.json.

    python scripts/check_behaviour.py                  # exit 0 when identical, 1 with the differences
    python scripts/check_behaviour.py new_keys=true    # the same, accepting metrics the snapshot lacks
    python scripts/check_behaviour.py record=true      # record a new snapshot (after an intended change)
    python scripts/check_behaviour.py rtol=1e-4        # on another CPU than the snapshot's: accept rounding

About 40 s on one core. See agents/analysis/behaviour.py for what is compared and why.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from agents.analysis import behaviour
from agents.analysis.results import ROOT, code_commit, machine
from worldmodel.cli import parse_keys

KEYS = {
    "record": (bool, False, "write a new snapshot instead of comparing with it"),
    "new_keys": (bool, False, "accept metrics the snapshot lacks (a change that only logs more)"),
    "rtol": (float, 0.0, "accept numbers within this relative difference (another CPU model rounds differently)"),
    "snapshot": (str, str(ROOT / "docs" / "results" / "behaviour" / "snapshot.json"), "the snapshot file"),
}


def main(argv: list[str] | None = None) -> int:
    args = parse_keys(sys.argv[1:] if argv is None else argv, KEYS, "check_behaviour.py")
    with tempfile.TemporaryDirectory() as work:
        runs = behaviour.run_all(ROOT, Path(work))
    snapshot = Path(args["snapshot"])
    if args["record"]:
        commit = code_commit()
        behaviour.save_snapshot(snapshot, runs, f"recorded at {commit or 'an unknown commit'}",
                      machine()["cpu"])
        print(f"recorded {snapshot}: " + ", ".join(f"{k} {len(v)} records" for k, v in runs.items()))
        return 0
    expected = behaviour.load_snapshot(snapshot)
    recorded_on, here = behaviour.snapshot_cpu(snapshot) or "AMD EPYC", machine()["cpu"]
    if recorded_on != here:
        print(f"note: the snapshot was recorded on {recorded_on!r} and this is {here!r}: another CPU model may "
              f"round differently (pass rtol=1e-4 to accept that).")
    worst, where = behaviour.largest_difference(expected, runs)
    if worst:
        print(f"largest relative difference: {worst:.2g} ({where})")
    found = behaviour.differences(expected, runs, new_keys=args["new_keys"], rtol=args["rtol"])
    if found:
        print("behaviour changed:\n  " + "\n  ".join(found))
        return 1
    if worst:
        print(f"within rtol={args['rtol']:g}")
    print("identical: " + ", ".join(f"{k} ({len(v)} records)" for k, v in runs.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
