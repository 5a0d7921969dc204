"""The GraphQL API of saleor-flows, served under the plugin's URL (``/plugins/global/saleor.flows/graphql/``).

``schema.py`` composes the per-domain modules; ``view.py`` serves it; ``auth.py`` turns a bearer token into
permissions. See docs/api.md.
"""
