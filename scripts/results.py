"""Rebuild the result tables of the README and docs/ from whatever JSON lies in docs/results/.

    python scripts/results.py
"""

from agents.analysis.results import update_docs

if __name__ == "__main__":
    update_docs()
