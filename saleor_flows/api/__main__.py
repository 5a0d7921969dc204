"""``python -m saleor_flows.api [--check]``: write (or check) ``schema.graphql`` without a host project."""

import sys

import django
from django.conf import settings


def main(argv) -> int:
    if not settings.configured:
        settings.configure(INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "saleor_flows"],
                           USE_TZ=True)
    django.setup()
    from .schema import SCHEMA_FILE, printed

    if argv[:1] == ["--check"]:
        if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text() != printed():
            print(f"{SCHEMA_FILE} is out of date: run python -m saleor_flows.api", file=sys.stderr)
            return 1
        print(f"{SCHEMA_FILE} is up to date")
        return 0
    SCHEMA_FILE.write_text(printed())
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
