"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

# Third-party programs that tests/test_tf_programs.py runs (kept outside the repository);
# their own test files are not collected directly.
collect_ignore = ["programs"]


@pytest.fixture(scope="session")
def symdl_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory for compiled modules, so tests never write to the user's cache."""
    return tmp_path_factory.mktemp("symdl_cache")
