"""The Saleor edge: a Saleor plugin that turns the store's hooks into our normalized events.

Only modules in this package import Saleor. ``translate.py`` is pure (Saleor
payload dicts in, ``record_event`` arguments out); ``plugin.py`` holds the
hooks; ``payloads.py`` calls Saleor's own payload functions; ``config.py``
feeds the plugin's configuration to the engine's settings.
"""
