"""Numbers, intervals and crossings as text: the one home of the formatters that the CLI, the
analysis prose, the report and the demo share.

A base module (standard library only), so every stage may use it. Method names reach it already
labelled: the labels live with the method registry (``ftscale.analysis.health.method_label``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any


def fmt_num(v: Any) -> str:
    """A number in four significant digits ("0.04213", "1.2e+04"); "-" for None, "nan" for
    NaN, anything not a float as ``str`` (an int keeps every digit)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.4g}"
    return str(v)


def fmt_count(n: int | None) -> str:
    """A count (parameters, tokens) with thousands separators: "1,234,567"; "-" for None."""
    return "-" if n is None else f"{n:,}"


def fmt_value(v: float) -> str:
    """A factor value (model parameters, tokens) as text: 1.2M, 350k, 20."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:g}"


def fmt_size(d: float) -> str:
    """A data size (examples) or factor value as text: 1,200; 3.2; 1.5e+09."""
    if not math.isfinite(d):
        return str(d)
    if abs(d) >= 1e7:
        return f"{d:.3g}"
    return f"{d:,.0f}" if abs(d) >= 10 else f"{d:.3g}"


def fmt_g(v: Any, fmt: str = ".3g") -> str:
    """``v`` in the format spec ``fmt``; "-" for None or a non-finite float."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, fmt)


def fmt_interval(iv: Sequence[Any], fmt: str | Callable[[Any], str] = ".3f") -> str:
    """An interval ``[lo, hi]`` as text, "[0.412, 0.455]": each end in the format spec ``fmt``
    or through the function ``fmt``."""
    one = fmt if callable(fmt) else (lambda v: format(v, fmt))
    return f"[{one(iv[0])}, {one(iv[1])}]"


def fmt_ci(v: float, ci: Sequence[Any] | None, fmt: str = ".3g") -> str:
    """A number with its interval: "0.042 [0.031, 0.055]" (the number alone without one, "-"
    for a missing or non-finite number)."""
    if ci is None or ci[0] is None:
        return fmt_g(v, fmt)
    return f"{fmt_g(v, fmt)} {fmt_interval(ci, lambda x: fmt_g(x, fmt))}"


def fmt_crossing(before: str, after: str, data_size: float) -> str:
    """Where the best method changes: "the best method changes from LoRA to full finetuning at
    ~1,200 examples". ``before``/``after`` are the methods' labels; ``data_size`` in examples."""
    return f"the best method changes from {before} to {after} at ~{fmt_size(data_size)} examples"
