"""The App service: saleor-flows as a Saleor App with its own web server, worker, beat and database.

For shops that cannot install the plugin (Saleor Cloud, an untouched Saleor
image): Saleor sends its signed webhooks here (``saleor_flows.saleor_app``)
and the same engine, journeys, API and Dashboard extension run beside it.
Configured only by environment variables (``env.py``); started with
``saleor-flows-app`` / ``python -m saleor_flows.app_service`` (``cli.py``).
README "Saleor Cloud / App mode" has the steps.
"""
