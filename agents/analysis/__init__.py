"""Analysis: measuring agents and world models, never training them. The linear probe on episodes
(`probe`), imagined rollouts and their videos (`imagine`, `video`), out-of-distribution robustness
(`robustness`), learning curves (`metrics`, `plots`), benchmark result tables (`results`), TorchRL
references for the benchmarks (`torchrl_reference`), the behaviour check (`behaviour`) and, in
`bench/`, what each benchmark script measures, tabulates and plots.

Imports the agent and `worldmodel` and `envs`; never `agents.training` (training uses analysis to
measure a run while it trains, so the arrow points one way).
"""
