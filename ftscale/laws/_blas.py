"""Run the fitter with single-threaded BLAS.

The fitter makes thousands of tiny BLAS calls (scipy's L-BFGS-B on 3-5 parameters, stacked
mat-vecs). With OpenBLAS's default thread pool each call wakes every thread; on a loaded 2-core
machine that made one scipy L-BFGS-B iteration ~25 ms instead of ~1 ms (measured here, 20x).
There is no threadpoolctl in our dependencies, so the OpenBLAS libraries already loaded into the
process are found in /proc/self/maps and their thread count is set through ctypes, then
restored. Elsewhere (no /proc, another BLAS) this is a no-op.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

_LIBS: list[tuple[ctypes.CDLL, str]] | None = None


def _openblas_libs() -> list[tuple[ctypes.CDLL, str]]:
    global _LIBS
    if _LIBS is not None:
        return _LIBS
    found: list[tuple[ctypes.CDLL, str]] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                name = f"{prefix}_set_num_threads{suffix}"
                if hasattr(lib, name) and hasattr(lib, f"{prefix}_get_num_threads{suffix}"):
                    found.append((lib, f"{prefix}_%s_num_threads{suffix}"))
                    break
            else:
                continue
            break
    _LIBS = found
    return found


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Within the block, every loaded OpenBLAS uses one thread; the old counts come back after."""
    libs = _openblas_libs()
    old = []
    for lib, pattern in libs:
        try:
            old.append(int(getattr(lib, pattern % "get")()))
            getattr(lib, pattern % "set")(1)
        except (AttributeError, OSError):
            old.append(None)
    try:
        yield
    finally:
        for (lib, pattern), n in zip(libs, old, strict=True):
            if n is not None:
                getattr(lib, pattern % "set")(n)
