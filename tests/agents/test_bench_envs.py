"""The pixel-env throughput table (scripts/bench_envs.py)."""

from agents.analysis.bench.envs import env_table


def test_env_table_adds_the_suites_renderer_column_only_where_measured():
    raw = {"Pendulum-v1": {"single": 800.0, "async_2": 870.0},
           "dm_control/walker-walk-v0": {"single": 60.0, "async_2": 90.0, "single_suite_render": 40.0}}
    table = env_table(raw, [1, 2])
    assert table["columns"] == ["env (64x64)", "single env", "async x2", "single env, the suite's renderer"]
    assert table["rows"] == [["Pendulum-v1", "800", "870", "–"], ["dm_control/walker-walk-v0", "60", "90", "40"]]
    assert env_table({"Pendulum-v1": {"single": 800.0}}, [1])["columns"] == ["env (64x64)", "single env"]
