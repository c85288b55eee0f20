"""Test fakes: a tiny learnable task and model (``toy``) and a simulated run function
(``simulated``). For tests and benchmarks only: no module of the library imports this package
(tests/test_layering.py checks it), so nothing here can leak into a real study.
"""
