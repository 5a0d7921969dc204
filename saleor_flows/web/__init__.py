"""Public HTTP endpoints (unsubscribe, preferences, confirm, open pixel, click redirect), served under the plugin's URL.

The links to them are made where mail is made (``channels/tokens.py``); these modules only answer them.
"""
