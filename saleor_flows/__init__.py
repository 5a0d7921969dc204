"""saleor-flows: event-triggered email and SMS journeys for Saleor."""

__version__ = "0.1.0"
