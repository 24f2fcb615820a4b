#!/usr/bin/env bash
# One entry point that sets itself up: creates .venv/ in the repository root when it is missing,
# reuses it when present, then runs what was asked.
#
#   bash scripts/run.sh train [key=value ...]     # scripts/train.py (any scripts/<name>.py works)
#   bash scripts/run.sh test [pytest args ...]    # the test suite, on TEST_WORKERS=2 processes
#
# TORCH_SPEC picks the torch build to install on first use (default: torch==2.13.0, which resolves
# to the local CPU wheel where one exists and to PyPI's CUDA build elsewhere). For a GPU machine:
#   TORCH_SPEC="torch==2.13.0" bash scripts/run.sh test            (PyPI's Linux wheel has CUDA)
#   TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128" ...   (a specific CUDA)
# EXTRAS adds optional groups, e.g. EXTRAS=mujoco,dmc,atari.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
stamp="$venv/.installed"
want="${TORCH_SPEC:-torch==2.13.0} [test${EXTRAS:+,$EXTRAS}] $(sha1sum pyproject.toml | cut -c1-12)"

if [ ! -x "$venv/bin/python" ]; then
  echo "[run.sh] creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[run.sh] installing the package and its dependencies into $venv (first run: ~1 min)" >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check ${TORCH_SPEC:-torch==2.13.0} \
      -e ".[test${EXTRAS:+,$EXTRAS}]" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > "$stamp"
fi

cmd="${1:-}"
[ -n "$cmd" ] || { sed -n '2,14p' "$0"; exit 2; }
shift
case "$cmd" in
  # Two pytest-xdist workers, one test file each at a time (module fixtures train once); a later
  # -n in the arguments wins, e.g. `-n 0` for one process.
  test) exec "$venv/bin/python" -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@" ;;
  *)
    script="$root/scripts/$cmd.py"
    [ -f "$script" ] || { echo "[run.sh] no such script: scripts/$cmd.py (have: $(ls "$root"/scripts/*.py | xargs -n1 basename | tr '\n' ' '))" >&2; exit 2; }
    exec "$venv/bin/python" "$script" "$@" ;;
esac
