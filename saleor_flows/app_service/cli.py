"""``saleor-flows-app`` (or ``python -m saleor_flows.app_service``): run the App service's processes.

    saleor-flows-app check      which environment variables are set, missing or wrong
    saleor-flows-app migrate    create or update the database tables
    saleor-flows-app web        the web server (gunicorn; Saleor's webhooks, the Dashboard App, public pages)
    saleor-flows-app worker     a Celery worker (events, sends)
    saleor-flows-app beat       Celery beat (the sweep and the nightly jobs; run exactly one)
    saleor-flows-app manage …   any Django management command (flows export, flows_deadletters, …)

Arguments after the subcommand go to the program it starts (``worker --concurrency 4``).
Every subcommand checks the configuration first and stops with one line
saying what is wrong. ``web``, ``worker`` and ``beat`` replace this process
(exec), so a container's stop signal reaches the server itself.
"""

import importlib.util
import os
import sys

from . import env

SETTINGS = "saleor_flows.app_service.settings"
CELERY_APP = "saleor_flows.app_service.celery"
SUBCOMMANDS = ("check", "migrate", "web", "worker", "beat", "manage")
GUNICORN_THREADS = 4


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__.strip())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        print(f"saleor-flows-app: unknown command {command!r}; use one of {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    if command == "check":
        return check(os.environ)
    try:
        values = env.load(os.environ)
    except env.ConfigError as exc:
        print(f"saleor-flows-app: {exc}", file=sys.stderr)
        return 2
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    return globals()[f"_{command}"](values, rest)


def check(environ) -> int:
    """One line per variable (never its value), then whether the whole configuration loads."""
    absent = set(env.missing(environ))
    for variable in env.VARIABLES:
        if variable.name.endswith("*"):
            prefix = variable.name[:-1]
            names = sorted(name for name in environ if name.startswith(prefix))
            state = f"set: {', '.join(names)}" if names else "none set"
        elif variable.name in absent:
            state = "MISSING (required)"
        elif environ.get(variable.name, "").strip():
            state = "set"
        else:
            state = "not set (optional)"
        print(f"{variable.name:22} {state}")
    try:
        values = env.load(environ)
    except env.ConfigError as exc:
        print(f"saleor-flows-app: {exc}")
        return 1
    if values["MAIL"]["EMAIL_BACKEND"].endswith("console.EmailBackend"):
        print("note: no EMAIL_URL or EMAIL_BACKEND: emails are written to the log, not sent")
    print("configuration: ok")
    return 0


def _migrate(values, rest) -> int:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", *rest, interactive=False)
    return 0


def _manage(values, rest) -> int:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["saleor-flows-app manage", *rest])
    return 0


def _web(values, rest) -> int:
    if importlib.util.find_spec("gunicorn") is None:
        print("saleor-flows-app: the web server needs gunicorn: pip install 'saleor-flows[app]'", file=sys.stderr)
        return 2
    _exec("gunicorn", "saleor_flows.app_service.wsgi:application", "--bind", f"0.0.0.0:{values['PORT']}",
          "--workers", str(values["WEB_CONCURRENCY"]), "--worker-class", "gthread", "--threads", str(GUNICORN_THREADS),
          "--access-logfile", "-", "--error-logfile", "-", "--log-level", values["LOG_LEVEL"].lower(), *rest)


def _worker(values, rest) -> int:
    _exec("celery", "-A", CELERY_APP, "worker", "--loglevel", values["LOG_LEVEL"], *rest)


def _beat(values, rest) -> int:
    _exec("celery", "-A", CELERY_APP, "beat", "--loglevel", values["LOG_LEVEL"], *rest)


def _exec(module: str, *args: str):
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *args])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
