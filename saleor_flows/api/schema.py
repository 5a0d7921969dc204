"""The API's schema, composed from one module per domain.

Adding a domain (reports, simulation, flows as code…) is one import and one
entry in ``QUERIES``/``MUTATIONS``: each module exposes a ``Query`` and/or a
``Mutation`` graphene ObjectType whose fields are merged into the root types.
Then regenerate the committed schema file (a test fails until you do)::

    python -m saleor_flows.api                 # writes saleor_flows/api/schema.graphql
    python manage.py flows_api_schema          # the same inside a host project
"""

from pathlib import Path

import graphene

from . import (contacts, dashboard, flows, flows_as_code, messages, reports, settings, simulation, storefront,
               templates)

QUERIES = [flows.Query, templates.Query, contacts.Query, messages.Query, flows_as_code.Query, simulation.Query,
           reports.Query, dashboard.Query, settings.Query]
MUTATIONS = [flows.Mutation, templates.Mutation, messages.Mutation, contacts.Mutation, storefront.Mutation,
             flows_as_code.Mutation, simulation.Mutation, settings.Mutation]

Query = type("Query", tuple(reversed(QUERIES)), {})
Mutation = type("Mutation", tuple(reversed(MUTATIONS)), {})

schema = graphene.Schema(query=Query, mutation=Mutation, auto_camelcase=True)

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")


def printed() -> str:
    """The schema in SDL, as committed in ``schema.graphql``."""
    return str(schema).strip() + "\n"
