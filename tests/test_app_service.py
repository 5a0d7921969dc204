"""The App service's configuration and its deployment files (README "Saleor Cloud / App mode").

No Docker engine runs these tests: they read the Dockerfile and docker-compose.yml
and check each against the package (the subcommands exist, every variable set is
one the service reads, every required one is set). tests/test_app_mode_e2e.py
runs the service's real processes.
"""

import json
import os
import re
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml
from django.urls import resolve

from saleor_flows.app_service import cli, env

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "SECRET_KEY": "s" * 50,
    "SALEOR_API_URL": "https://shop.saleor.cloud/graphql/",
    "APP_URL": "https://flows.shop.example/",
    "DATABASE_URL": "postgres://flows:p%40ss@db.internal:6543/flows?sslmode=require",
    "REDIS_URL": "redis://redis:6379/2",
}


def run_cli(*args, environ):
    """The command as a shop runs it: a new process with only ``environ`` (and what Python needs)."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return subprocess.run([sys.executable, "-m", "saleor_flows.app_service", *args], capture_output=True, text=True,
                          env={**keep, "PYTHONPATH": str(ROOT), **environ}, timeout=60, cwd=ROOT)


# --- settings from the environment ---------------------------------------------------------


def test_a_complete_environment_becomes_settings():
    values = env.load(GOOD)
    database = values["DATABASES"]["default"]
    assert (database["NAME"], database["USER"], database["PASSWORD"], database["HOST"], database["PORT"]) == (
        "flows", "flows", "p@ss", "db.internal", "6543")
    assert database["OPTIONS"] == {"sslmode": "require"}
    assert values["CELERY_BROKER_URL"] == "redis://redis:6379/2"
    assert values["CACHES"]["default"]["LOCATION"] == "redis://redis:6379/2"  # rate limits shared by all workers
    assert values["ALLOWED_HOSTS"] == ["flows.shop.example"]
    flows = values["SALEOR_FLOWS"]
    # App mode: one Saleor, its keys, links to this service, work through Celery.
    assert flows["APP_SALEOR_API_URL"] == flows["API_TOKEN_ISSUER"] == "https://shop.saleor.cloud/graphql/"
    assert flows["API_JWKS_URL"] == "https://shop.saleor.cloud/.well-known/jwks.json"
    assert flows["PUBLIC_URL"] == "https://flows.shop.example"
    assert flows["TASK_MODE"] == "celery"
    assert values["MAIL"]["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


@pytest.mark.parametrize("name", ["SECRET_KEY", "SALEOR_API_URL", "APP_URL", "DATABASE_URL", "REDIS_URL"])
def test_each_required_variable_is_named_when_missing(name):
    with pytest.raises(env.ConfigError) as refused:
        env.load({**GOOD, name: "  "})
    assert str(refused.value).startswith(f"missing environment variable: {name} ")


def test_a_broker_url_stands_in_for_redis_url():
    values = env.load({**{k: v for k, v in GOOD.items() if k != "REDIS_URL"}, "CELERY_BROKER_URL": "amqp://mq//"})
    assert values["CELERY_BROKER_URL"] == "amqp://mq//"
    assert values["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")


@pytest.mark.parametrize("change, message", [
    ({"SECRET_KEY": "short"}, "SECRET_KEY is too short"),
    ({"SECRET_KEY": "change-me-to-50-random-characters-for-example-from-openssl-rand"},
     "SECRET_KEY is still the one from .env.example"),
    ({"SALEOR_API_URL": "shop.saleor.cloud/graphql/"}, "SALEOR_API_URL: expected an http(s):// URL"),
    ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL: only postgres:// URLs"),
    ({"EMAIL_URL": "smtp://mail:25", "EMAIL_BACKEND": "x.y"}, "set EMAIL_URL or EMAIL_BACKEND, not both"),
    ({"EMAIL_URL": "mailto:someone"}, "EMAIL_URL: expected smtp://"),
    ({"EMAIL_USE_TLS": "maybe"}, "EMAIL_USE_TLS: expected true or false"),
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY: must be more than 0"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: expected one of"),
    ({"FLOWS_ABANDONED_CHEKOUT_IDLE_MINUTES": "5"}, "FLOWS_ABANDONED_CHEKOUT_IDLE_MINUTES: no such setting"),
    ({"FLOWS_SHOP": "{'name': 'single quotes'}"}, "FLOWS_SHOP: not valid JSON"),
    ({"FLOWS_SHOP": "[1, 2]"}, "FLOWS_SHOP: expected a JSON object, got a JSON list"),
    ({"FLOWS_LAPSED_AFTER_DAYS": '"ninety"'}, "FLOWS_LAPSED_AFTER_DAYS: expected a number, got a string"),
])
def test_a_bad_value_is_refused_with_its_name(change, message):
    with pytest.raises(env.ConfigError) as refused:
        env.load({**GOOD, **change})
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_flows_settings_from_flows_variables():
    flows = env.load({**GOOD, "FLOWS_SHOP": '{"name": "Kiosk", "url": "https://kiosk.example"}',
                      "FLOWS_ABANDONED_CHECKOUT_IDLE_MINUTES": "30", "FLOWS_TRACKING": "false",
                      "FLOWS_CONSENT_POLICY": "soft_opt_in", "FLOWS_FROM_EMAIL": "Kiosk <hi@kiosk.example>",
                      "FLOWS_SMTP": '{"host": "smtp.kiosk.example", "port": 2525}', "FLOWS_RETENTION_EVENT_DAYS":
                          "null", "FLOWS_REPLY_TO": "", "FLOWS_PUBLIC_URL": "https://links.kiosk.example"})["SALEOR_FLOWS"]
    assert flows["SHOP"] == {"name": "Kiosk", "url": "https://kiosk.example"}
    assert flows["ABANDONED_CHECKOUT_IDLE_MINUTES"] == 30
    assert flows["TRACKING"] is False
    assert flows["CONSENT_POLICY"] == "soft_opt_in"
    assert flows["FROM_EMAIL"] == "Kiosk <hi@kiosk.example>"  # text, although its default is None
    assert flows["SMTP"] == {"host": "smtp.kiosk.example", "port": 2525}
    assert flows["RETENTION_EVENT_DAYS"] is None  # keep forever
    assert "REPLY_TO" not in flows  # empty means unset (compose's ${X:-})
    assert flows["PUBLIC_URL"] == "https://links.kiosk.example"  # a FLOWS_ variable wins over what APP_URL implies


def test_mail_from_an_smtp_url_or_a_backend_with_anymail():
    starttls = env.load({**GOOD, "EMAIL_URL": "smtp://me%40shop:se%2Fcret@smtp.example"})["MAIL"]
    assert (starttls["EMAIL_HOST"], starttls["EMAIL_PORT"], starttls["EMAIL_HOST_USER"],
            starttls["EMAIL_HOST_PASSWORD"], starttls["EMAIL_USE_TLS"], starttls["EMAIL_USE_SSL"]) == (
        "smtp.example", 587, "me@shop", "se/cret", True, False)
    plain = env.load({**GOOD, "EMAIL_URL": "smtp://mailpit:1025?tls=false"})["MAIL"]
    assert (plain["EMAIL_PORT"], plain["EMAIL_USE_TLS"]) == (1025, False)
    implicit = env.load({**GOOD, "EMAIL_URL": "smtps://u:p@smtp.example"})["MAIL"]
    assert (implicit["EMAIL_PORT"], implicit["EMAIL_USE_SSL"], implicit["EMAIL_USE_TLS"]) == (465, True, False)
    esp = env.load({**GOOD, "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
                    "ANYMAIL_POSTMARK_SERVER_TOKEN": "tok", "ANYMAIL_WEBHOOK_SECRET": "a:b"})["MAIL"]
    assert esp["EMAIL_BACKEND"] == "anymail.backends.postmark.EmailBackend"
    assert esp["ANYMAIL"] == {"POSTMARK_SERVER_TOKEN": "tok", "WEBHOOK_SECRET": "a:b"}


# --- the command -------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["web"], ["worker"], ["beat"], ["migrate"]])
def test_every_process_refuses_to_start_without_its_settings_in_one_line(args):
    result = run_cli(*args, environ={"SECRET_KEY": "s" * 50})
    assert result.returncode == 2
    assert result.stderr.strip() == ("saleor-flows-app: missing environment variables: SALEOR_API_URL, APP_URL, "
                                     "DATABASE_URL, REDIS_URL (run `saleor-flows-app check` for the list)")


def test_the_settings_module_itself_refuses_in_one_line():
    """Also when a server imports the settings directly (gunicorn or celery run by hand)."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], capture_output=True, text=True,
                            timeout=60, env={**keep, "PYTHONPATH": str(ROOT), **GOOD, "SALEOR_API_URL": "",
                                             "DJANGO_SETTINGS_MODULE": "saleor_flows.app_service.settings"})
    assert result.returncode == 1
    assert result.stderr.strip() == ("saleor-flows-app: missing environment variable: SALEOR_API_URL "
                                     "(run `saleor-flows-app check` for the list)")


def test_check_lists_what_is_missing_without_printing_secrets():
    result = run_cli("check", environ={"SECRET_KEY": "very-secret-value-" * 3, "ANYMAIL_SENDGRID_API_KEY": "SG.x"})
    assert result.returncode == 1
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines() if not line.startswith("saleor-flows"))
    assert lines["SECRET_KEY"] == "set"
    assert lines["SALEOR_API_URL"] == lines["APP_URL"] == lines["DATABASE_URL"] == "MISSING (required)"
    assert lines["ANYMAIL_*"] == "set: ANYMAIL_SENDGRID_API_KEY"
    assert "very-secret-value" not in result.stdout and "SG.x" not in result.stdout
    ok = run_cli("check", environ=GOOD)
    assert ok.returncode == 0 and ok.stdout.rstrip().endswith("configuration: ok"), ok.stdout
    assert "emails are written to the log" in ok.stdout


def test_an_unknown_subcommand_is_refused():
    result = run_cli("serve", environ=GOOD)
    assert result.returncode == 2
    assert "unknown command 'serve'" in result.stderr


# --- the deployment files ----------------------------------------------------------------


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _app_services(compose):
    return {name: service for name, service in compose["services"].items() if "build" in service}


def test_compose_runs_every_process_of_the_service():
    services = _app_services(_compose())
    commands = {name: service["command"] for name, service in services.items()}
    assert commands == {"migrate": ["migrate"], "web": ["web"], "worker": ["worker"], "beat": ["beat"]}
    assert all(command[0] in cli.SUBCOMMANDS for command in commands.values())
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert {"postgres", "redis"} <= set(_compose()["services"])


def test_compose_sets_only_variables_the_service_reads_and_every_required_one():
    compose = _compose()
    for name, service in _app_services(compose).items():
        environment = service["environment"]
        assert [key for key in environment if not env.known(key)] == [], name
        assert set(env.REQUIRED) <= set(environment), name
        # Backing services by their compose names.
        assert environment["DATABASE_URL"].endswith("@postgres:5432/flows")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
    database = compose["services"]["postgres"]["environment"]
    assert (database["POSTGRES_USER"], database["POSTGRES_DB"]) == ("flows", "flows")


def test_env_example_holds_only_variables_the_service_or_compose_reads():
    compose_text = (ROOT / "docker-compose.yml").read_text()
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    wired = {key for key, value in _app_services(_compose())["web"]["environment"].items() if "${" + key not in value}
    assert set(env.REQUIRED) - wired == {"SECRET_KEY", "SALEOR_API_URL", "APP_URL"} <= set(names)
    for name in names:
        assert env.known(name) or "${" + name + ":" in compose_text, name


def test_dockerfile_installs_the_app_extra_as_a_non_root_user_and_starts_a_real_subcommand():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    # Logical instructions: comments dropped, continuation lines joined.
    text = "\n".join(line for line in lines if not line.startswith("#")).replace("\\\n", " ")
    instructions = [line for line in text.splitlines() if line]
    assert instructions[0] == "FROM python:3.12-slim"
    assert any(re.search(r"pip install \"/tmp/saleor-flows\[app\]\"", line) for line in instructions)
    user = next(line.split()[1] for line in instructions if line.startswith("USER "))
    assert user not in ("root", "0")
    entrypoint = json.loads(next(line[len("ENTRYPOINT "):] for line in instructions if line.startswith("ENTRYPOINT")))
    command = json.loads(next(line[len("CMD "):] for line in instructions if line.startswith("CMD ")))
    scripts = ConfigParser()
    scripts.read(ROOT / "setup.cfg")
    console = dict(line.split(" = ") for line in scripts["options.entry_points"]["console_scripts"].split("\n") if line)
    assert entrypoint == ["saleor-flows-app"] and console["saleor-flows-app"] == "saleor_flows.app_service.cli:main"
    assert command[0] in cli.SUBCOMMANDS
    assert "gunicorn" in scripts["options.extras_require"]["app"]
    # The health check asks a URL the service has.
    healthcheck = next(line for line in instructions if "healthz" in line)
    assert "/healthz" in healthcheck
    assert resolve("/healthz", urlconf="saleor_flows.app_service.urls").url_name == "flows-app-health"


def test_the_image_build_context_keeps_secrets_and_node_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", "dashboard-extension", ".venv"} <= set(ignored)


def test_readme_documents_every_variable():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Saleor Cloud / App mode"):]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    for variable in env.VARIABLES:
        assert f"`{variable.name}`" in section, variable.name
    assert "docs/app-mode.md" in section
    assert "docker compose up -d" in section


@pytest.mark.parametrize("hops, forwarded, expected", [
    (0, "203.0.113.7", "10.0.0.2"),  # no proxies declared: the header is the client's own words
    (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the balancer appended the client; the rest is made up
    (2, "198.51.100.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
    (2, "203.0.113.7", "10.0.0.2"),  # fewer entries than proxies: keep the proxy's address
    (1, "not-an-address", "10.0.0.2"),
    (1, "2001:db8::1", "2001:db8::1"),
])
def test_the_shoppers_address_behind_the_declared_proxies(settings, rf, hops, forwarded, expected):
    from saleor_flows.app_service.middleware import ForwardedClientAddress

    settings.PROXY_HOPS = hops
    seen = {}
    middleware = ForwardedClientAddress(lambda request: seen.setdefault("address", request.META["REMOTE_ADDR"]))
    middleware(rf.get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.0.0.2"))
    assert seen["address"] == expected


def test_proxy_hops_must_be_a_whole_number():
    assert env.load({**GOOD, "PROXY_HOPS": "1"})["PROXY_HOPS"] == 1
    with pytest.raises(env.ConfigError, match="PROXY_HOPS: expected a whole number"):
        env.load({**GOOD, "PROXY_HOPS": "one"})


def test_beat_runs_every_periodic_task_of_flows_and_the_app_edge_and_the_worker_knows_them():
    """In a process of its own: importing the service's Celery app here would make it this process's current app."""
    script = ("import json; from saleor_flows.app_service.celery import app; "
              "print(json.dumps({name: [entry['task'], str(entry['schedule']), entry['task'] in app.tasks] "
              "for name, entry in app.conf.beat_schedule.items()}))")
    keep = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={**keep, "PYTHONPATH": str(ROOT), **GOOD, "SWEEP_INTERVAL_SECONDS": "2.5"})
    assert result.returncode == 0, result.stderr
    schedule = json.loads(result.stdout)
    from saleor_flows import tasks
    from saleor_flows.saleor_app import tasks as app_tasks

    expected = {name: entry["task"] for name, entry in {**tasks.BEAT_SCHEDULE, **app_tasks.BEAT_SCHEDULE}.items()}
    assert {name: task for name, (task, _, _) in schedule.items()} == expected
    assert all(registered for _, _, registered in schedule.values())
    assert schedule["saleor-flows-sweep"][1] == "2.5"


def test_manage_runs_djangos_checks_on_the_service_settings():
    """The settings, URLs and installed apps of the service as a whole (``manage`` passes any command on)."""
    result = run_cli("manage", "check", environ=GOOD)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
