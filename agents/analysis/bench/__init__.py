"""The benchmarks of `scripts/bench_*.py`: what each one measures, and its README table and plot.

Each module is named after its script (`bench.planner` for `scripts/bench_planner.py`). A script
parses its command line, builds the parts it measures through `agents.training.assembly` and
`agents.episodes`, and hands them here; the results go to docs/results through
`agents.analysis.results`.

- `envs`: pixel env steps/s, single and vectorised.
- `replay`: replay bytes per transition, add and sample latency.
- `planner`: ms per action of our planners and TorchRL's `MPPIPlanner`.
- `world_model`: update rate and peak memory of ours and TorchRL's Dreamer.
- `throughput`: the whole agent's collection rate, update rate, latency and memory.
- `probe`: linear-probe R² before and after pretraining, piece by piece.
- `sample_efficiency`: eval return vs environment steps, piece by piece, and its plot.
- `transfer`: what a pretrained encoder buys on a new env, piece by piece, and its plot.
- `dmc`: DeepMind Control from pixels at 100k frames beside the published figures, piece by piece, and its plot.
- `robustness`: the table of a trained agent under perturbations.
"""
