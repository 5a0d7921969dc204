"""Benchmarks for the docs/design.md performance targets: ``make bench`` or ``python -m bench [name …]``.

One module per benchmark (ingest, claim, render, latency, storage), each with a
``run()`` that prints its figures. They run against a dedicated PostgreSQL
database (``bench/settings.py``) whose tables are emptied between benchmarks.
Results and how to read them: ``docs/performance.md``.
"""
