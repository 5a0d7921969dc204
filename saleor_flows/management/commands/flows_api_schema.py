"""Write the GraphQL API's schema to ``saleor_flows/api/schema.graphql`` (``--check``: only compare)."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Write (or with --check, verify) saleor_flows/api/schema.graphql from the API's schema."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Fail if the file differs from the schema.")

    def handle(self, *args, check=False, **options):
        from ...api.schema import SCHEMA_FILE, printed

        if check:
            if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text() != printed():
                raise CommandError(f"{SCHEMA_FILE} is out of date: run `manage.py flows_api_schema`.")
            self.stdout.write(f"{SCHEMA_FILE} is up to date")
            return
        SCHEMA_FILE.write_text(printed())
        self.stdout.write(f"wrote {SCHEMA_FILE}")
