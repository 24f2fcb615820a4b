"""The README table of `scripts/bench_robustness.py`, from a report of
`agents.analysis.robustness.robustness` (a trained agent, clean and under every perturbation).

    table = robustness_table(report, episodes=10)
"""

from __future__ import annotations


def _r2(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def robustness_table(report: dict, episodes: int) -> dict:
    """One row for clean, then one per (perturbation, severity): return, probe R² and their changes."""
    clean = report["clean"]
    rows = [["clean", "-", f"{clean['return_mean']:.1f} ± {clean['return_std']:.1f}", "-", _r2(clean["probe_r2"]), "-"]]
    for r in report["perturbations"].values():
        rows.append([r["name"], r["severity"] or "–", f"{r['return_mean']:.1f} ± {r['return_std']:.1f}",
                     f"{r['return_delta']:+.1f}", _r2(r["probe_r2"]),
                     "-" if r["probe_r2_delta"] is None else f"{r['probe_r2_delta']:+.3f}"])
    return {"columns": ["perturbation", "severity", f"return (mean ± std, {episodes} episodes)", "Δ return",
                        "probe R² (held out)", "Δ probe R²"], "rows": rows}
