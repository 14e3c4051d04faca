"""Keep the NLP stack air-gapped: no model hub, no public-suffix-list download.

Must run before ``tldextract`` (imported by Presidio's e-mail recognizer) is first imported: its
module-level extractor reads these variables once, at import.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def configure_offline() -> None:
    """Set the environment so nothing in the PII stack reaches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    if "TLDEXTRACT_CACHE" not in os.environ:
        cache = Path(tempfile.gettempdir()) / f"appliance-tldextract-{os.getuid()}"
        cache.mkdir(mode=0o700, exist_ok=True)
        os.environ["TLDEXTRACT_CACHE"] = str(cache)


def assert_offline_suffix_list() -> None:
    """Make sure the suffix-list extractor in use never fetches (it was maybe imported early)."""
    import tldextract.tldextract as tx

    if tx.TLD_EXTRACTOR.suffix_list_urls:
        tx.TLD_EXTRACTOR = tx.TLDExtract(suffix_list_urls=(), fallback_to_snapshot=True)
