"""The saleor-flows demo store: ``python -m demo`` (or ``make demo``).

A simulated month of a fictional shop's customers runs through the three
prebuilt journeys on the real engine; every email lands in an outbox folder.
See ``demo/__main__.py`` for the options and ``demo/store.py`` for the shoppers.
"""
