"""``manage.py flows export|import|validate``: flows as files in git (see docs/flows-as-code.md)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from saleor_flows.flows_as_code import (FORMAT, FORMATS, FlowsFileError, export_flows, import_flows, parse,
                                        validate_flows)
from saleor_flows.models import Flow

SUFFIXES = {".yaml", ".yml", ".json"}


def _read(path: str) -> list[tuple[str, str]]:
    """(source name, text) of a file, or of every YAML/JSON file in a directory (sorted by name)."""
    target = Path(path)
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.suffix in SUFFIXES)
        if not files:
            raise CommandError(f"{path}: no .yaml, .yml or .json files here")
    elif target.is_file():
        files = [target]
    else:
        raise CommandError(f"{path}: no such file or directory")
    return [(str(p), p.read_text(encoding="utf-8")) for p in files]


class Command(BaseCommand):
    help = "Export flows to YAML/JSON, import them back (as drafts, all or nothing), or validate a file."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
        export = sub.add_parser("export", help="write flows as a document (stdout, a file, or one file per flow)")
        export.add_argument("--format", choices=FORMATS, default="yaml")
        export.add_argument("--slug", action="append", dest="slugs", help="only this flow (repeatable)")
        export.add_argument("--with-status", action="store_true", help="include each flow's status")
        export.add_argument("-o", "--output", help="a file, or an existing directory for one file per flow")
        imp = sub.add_parser("import", help="create or update drafts from a file or directory")
        imp.add_argument("path")
        imp.add_argument("--publish", action="store_true", help="publish flows whose draft changed")
        imp.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
        check = sub.add_parser("validate", help="check a file or directory; non-zero exit on problems")
        check.add_argument("path")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except FlowsFileError as exc:
            raise CommandError("\n".join(exc.errors)) from None

    def _export(self, *, format, slugs, with_status, output, **_):
        if output and Path(output).is_dir():
            for slug in slugs or Flow.objects.order_by("slug").values_list("slug", flat=True):
                target = Path(output) / f"{slug}.{format}"
                target.write_text(export_flows([slug], format, with_status=with_status), encoding="utf-8")
                self.stdout.write(f"wrote {target}")
            return
        text = export_flows(slugs, format, with_status=with_status)
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {output}")
        else:
            self.stdout.write(text, ending="")

    def _import(self, *, path, publish, dry_run, **_):
        sources = _read(path)
        if len(sources) == 1:
            source, text = sources[0]
        else:
            # Several files import as one document: one transaction, and each problem names its file.
            for source, text in sources:
                validate_flows(text, source=source)
            source, text = path, _merged(sources)
        result = import_flows(text, publish=publish, dry_run=dry_run, source=source)
        self.stdout.write(result.summary())

    def _validate(self, *, path, **_):
        count = 0
        for source, text in _read(path):
            count += len(validate_flows(text, source=source))
        self.stdout.write(f"ok: {count} flow{'s' if count != 1 else ''}")


def _merged(sources) -> str:
    flows = [entry for source, text in sources for entry in parse(text, source=source)["flows"]]
    return json.dumps({"format": FORMAT, "flows": flows})
