"""Where the public data sets live (``../shared/data`` beside the checkout, or ``APPLIANCE_TEST_DATA``).

Found once; a test (or a test module, at import) that needs them is skipped with a reason when they are
absent, never failed. Tests get the path from the ``shared_data`` fixture (conftest), helpers from
``find_shared_data()``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO.parent / "shared" / "data"


@functools.cache
def _locate() -> Path | None:
    root = Path(os.environ.get("APPLIANCE_TEST_DATA") or DEFAULT)
    return root if (root / "banking77").is_dir() else None


def find_shared_data() -> Path:
    """The public data sets' root; skips the calling test (or module) when they are not there."""
    root = _locate()
    if root is None:
        where = os.environ.get("APPLIANCE_TEST_DATA") or DEFAULT
        pytest.skip(f"public data sets not found at {where} (set APPLIANCE_TEST_DATA)", allow_module_level=True)
    return root
