"""Flows as code through the API: the same export and import as ``manage.py flows`` (flows_as_code.py)."""

import graphene

from ..flows_as_code import FlowsFileError, export_flows, import_flows
from .core import FLOWS, FlowErrorCode, FlowsMutation, MutationError, error, permission_required
from .flows import require_for_definition

FlowsFileFormat = graphene.Enum("FlowsFileFormat", [("YAML", "yaml"), ("JSON", "json")])


class FlowsImportResult(graphene.ObjectType):
    created = graphene.List(graphene.NonNull(graphene.String), required=True, description="Slugs.")
    updated = graphene.List(graphene.NonNull(graphene.String), required=True)
    unchanged = graphene.List(graphene.NonNull(graphene.String), required=True)
    published = graphene.List(graphene.NonNull(graphene.String), required=True)
    notes = graphene.List(graphene.NonNull(graphene.String), required=True,
                          description='e.g. "welcome: draft changed, publish to apply".')
    dry_run = graphene.Boolean(required=True)


class Query(graphene.ObjectType):
    flows_export = graphene.String(
        slugs=graphene.List(graphene.NonNull(graphene.String), description="Default: every flow."),
        format=FlowsFileFormat(default_value="yaml"), with_status=graphene.Boolean(default_value=False),
        description="Flows as a document that diffs cleanly in git (format saleor-flows/1).")

    @permission_required(*FLOWS)
    def resolve_flows_export(root, info, slugs=None, format="yaml", with_status=False):
        return export_flows(slugs or None, fmt=format, with_status=with_status)


class FlowsImport(FlowsMutation):
    """Create or update drafts from a document; all or nothing. A live flow's running version never changes
    unless ``publish`` is set."""

    permissions = FLOWS

    class Arguments:
        text = graphene.String(required=True, description="A saleor-flows/1 document, YAML or JSON.")
        publish = graphene.Boolean(default_value=False)
        dry_run = graphene.Boolean(default_value=False)

    result = graphene.Field(FlowsImportResult)

    @classmethod
    def perform_mutation(cls, root, info, text, publish=False, dry_run=False):
        try:
            outcome = import_flows(text, publish=publish, dry_run=dry_run, source="api",
                                   authorize=lambda definition: require_for_definition(info, definition))
        except FlowsFileError as exc:
            raise MutationError(*[error(FlowErrorCode.INVALID_DEFINITION, message, "text") for message in exc.errors])
        return {"result": FlowsImportResult(**vars(outcome))}


class Mutation(graphene.ObjectType):
    flows_import = FlowsImport.Field()
