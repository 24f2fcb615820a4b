"""agents.analysis.results: what every saved figure records about where and from which code it came."""

import re
import shutil
import subprocess

import pytest

from agents.analysis import results


def test_a_figure_records_the_commit_that_made_it(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        assert results.code_commit() is None
        return
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=results.ROOT, capture_output=True, text=True)
    if head.returncode != 0:  # a copy outside git: nothing to record
        assert results.code_commit() is None
    else:
        commit = results.code_commit()
        assert re.fullmatch(re.escape(head.stdout.strip()) + r"(\+changes)?", commit), commit
        assert results.machine()["commit"] == commit
    monkeypatch.setattr(results, "ROOT", tmp_path)  # not a git checkout
    assert results.code_commit() is None and "commit" not in results.machine()


def test_only_a_change_to_the_code_marks_the_commit(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "agents").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "agents" / "a.py").write_text("x = 1\n")
    (tmp_path / "docs" / "results.md").write_text("table\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    monkeypatch.setattr(results, "ROOT", tmp_path)
    clean = results.code_commit()
    assert re.fullmatch(r"[0-9a-f]{4,40}", clean)
    (tmp_path / "docs" / "results.md").write_text("a table a benchmark rewrote\n")  # results, not code
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "new.txt").write_text("untracked\n")
    assert results.code_commit() == clean
    (tmp_path / "agents" / "a.py").write_text("x = 2\n")
    assert results.code_commit() == clean + "+changes"


def test_a_table_footer_names_the_commit_when_recorded():
    table = {"columns": ["a"], "rows": [[1]]}
    machine = {"cpu": "AMD EPYC", "threads": 1, "torch": "2.13.0+cpu", "date": "2026-12-06"}
    with_commit = results.render({"table": table, "command": "python x.py", "machine": {**machine, "commit": "c6b03b4"}})
    assert with_commit.endswith("torch 2.13.0+cpu, 2026-12-06, commit c6b03b4.</sub>")
    assert results.render({"table": table, "command": "python x.py", "machine": machine}).endswith(
        "torch 2.13.0+cpu, 2026-12-06.</sub>")


@pytest.mark.parametrize("code, message", [
    (143, "train.py was stopped by signal 15 after writing a checkpoint; run the same benchmark command again"),
    (2, "train.py env=x failed with exit status 2 (its error is printed above)"),
])
def test_run_script_stops_the_benchmark_with_one_line(monkeypatch, code, message):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, code))
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        results.run_script("train", "env=x")
