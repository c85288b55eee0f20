"""The law-fitting stage over DataFrames: results table -> seed-averaged points -> fitted laws,
critical data sizes and recommendations (fit records and fits documents).

``ftscale fit`` (``ftscale.lawfit``) and ``ftscale study fit`` (:mod:`ftscale.analysis.study`)
both go through it. The estimators underneath are :mod:`ftscale.laws` (numpy/scipy only).
"""
