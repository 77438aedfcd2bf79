"""Where the tests find the authors' code (BUTSpeechFIT/DiariZen), and at which commit.

The location comes only from the environment variable ``DIARIZEN_REPO``: a git checkout or
bare clone of https://github.com/BUTSpeechFIT/DiariZen holding commit :data:`DIARIZEN_COMMIT`
(the one espnet_prune/FIDELITY.md was verified against). Files are read from that commit with
``git show``, whatever the checkout's HEAD is. Without the variable the tests that need the code
are skipped with :data:`NOT_RUN` in their reason, and test/conftest.py prints one line in the
terminal summary saying so; a variable that points at something else fails those tests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DIARIZEN_COMMIT = "a60b18151dbbe246e4199d8ef5cd2ece3872ea94"
ENV = "DIARIZEN_REPO"
NOT_RUN = "DiariZen reference checks not run"


def diarizen_repo() -> Path:
    """The checked checkout; skips (unset) or fails (wrong place or commit missing)."""
    value = os.environ.get(ENV)
    if not value:
        pytest.skip(f"{NOT_RUN}: set {ENV} to a DiariZen git checkout holding "
                    f"{DIARIZEN_COMMIT[:7]}")
    repo = Path(value)
    proc = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "-e", f"{DIARIZEN_COMMIT}^{{commit}}"],
        capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"{ENV}={repo} is not a git repository holding DiariZen commit "
                    f"{DIARIZEN_COMMIT[:7]}: {proc.stderr.strip()}")
    return repo


def diarizen_file(repo: Path, name: str) -> str:
    """The text of ``name`` at :data:`DIARIZEN_COMMIT`."""
    proc = subprocess.run(["git", "-C", str(repo), "show", f"{DIARIZEN_COMMIT}:{name}"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"{repo}: no {name} at {DIARIZEN_COMMIT[:7]} ({proc.stderr.strip()})")
    return proc.stdout
