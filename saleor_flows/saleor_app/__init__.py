"""The Saleor App edge: Saleor's signed webhooks in, normalized events out (App mode, docs/app-mode.md).

For shops that cannot install a plugin. Saleor delivers its events to
``urls.py``'s receivers (``webhooks.py``: verify the detached JWS against the
instance's keys, one INSERT, 200); the subscription queries that shape those
deliveries are ``queries.py``, turned into the plugin's payload shape by
``shapes.py`` so the engine sees the same events from either edge. What the
App tells Saleor (consent written back to user metadata) goes through
``client.py`` from ``tasks.py``. Add ``saleor_flows.saleor_app`` to
``INSTALLED_APPS`` (after ``saleor_flows``) and mount ``saleor_flows.saleor_app.urls``.
Imports the engine and the other edges' shared pieces; the engine never imports it.
"""
