"""The shared formatters (ftscale.textfmt): numbers, intervals and crossings as text."""

from __future__ import annotations

import math

from ftscale.textfmt import (
    fmt_ci,
    fmt_count,
    fmt_crossing,
    fmt_g,
    fmt_interval,
    fmt_num,
    fmt_size,
    fmt_value,
)


def test_fmt_num_four_significant_digits_and_missing():
    assert fmt_num(0.0421337) == "0.04213"
    assert fmt_num(12345.6) == "1.235e+04"
    assert fmt_num(None) == "-"
    assert fmt_num(math.nan) == "nan"
    assert fmt_num(12345) == "12345"  # an int keeps every digit
    assert fmt_num("lora") == "lora"


def test_fmt_count_separates_thousands():
    assert fmt_count(1234567) == "1,234,567"
    assert fmt_count(None) == "-"


def test_fmt_value_units():
    assert fmt_value(1_234_000) == "1.23M"
    assert fmt_value(350_000) == "350k"
    assert fmt_value(2.5e9) == "2.5B"
    assert fmt_value(20) == "20"


def test_fmt_size_by_magnitude():
    assert fmt_size(1200) == "1,200"
    assert fmt_size(3.21) == "3.21"
    assert fmt_size(1.5e9) == "1.5e+09"
    assert fmt_size(math.inf) == "inf"


def test_fmt_g_dashes_missing_and_non_finite():
    assert fmt_g(0.123456) == "0.123"
    assert fmt_g(0.123456, ".2f") == "0.12"
    assert fmt_g(None) == "-"
    assert fmt_g(math.nan) == "-"


def test_fmt_interval_spec_or_function():
    assert fmt_interval([0.41234, 0.45567]) == "[0.412, 0.456]"
    assert fmt_interval((1.0, 20.0), ".3g") == "[1, 20]"
    assert fmt_interval([1234.5, None], fmt_num) == "[1234, -]"


def test_fmt_ci_number_with_interval():
    assert fmt_ci(0.0421, [0.0312, 0.0551]) == "0.0421 [0.0312, 0.0551]"
    assert fmt_ci(0.5, [0.25, math.inf], ".2f") == "0.50 [0.25, -]"
    assert fmt_ci(0.5, None) == "0.5"
    assert fmt_ci(0.5, [None, None]) == "0.5"


def test_fmt_crossing_sentence():
    assert fmt_crossing("LoRA", "full finetuning", 1234.4) == (
        "the best method changes from LoRA to full finetuning at ~1,234 examples"
    )
