"""The App service's real processes for end-to-end tests, started as a shop starts them.

Shared by the stand-in Saleor's end to end (``tests/test_app_mode_e2e.py``) and the real Saleor's
(``tests/saleor/test_app_mode.py``, which runs in Saleor's virtualenv and starts the service with
another Python): standard library only, no Django import, so either run can use it.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from saleor_flows.journeys import load_journey

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "saleor_flows.app_service"
PLUGIN_PATH = "/plugins/global/saleor.flows/"
STARTUP_SECONDS = 120  # gunicorn and two Celery processes on a shared 2-core machine


class AppProcesses:
    """``python -m saleor_flows.app_service <command>`` processes (and any helper module), each logging to a file."""

    def __init__(self, environ: dict, logs: Path, python: str = sys.executable):
        self.environ, self.logs, self.python, self.processes = environ, logs, python, {}
        self.url = environ["APP_URL"]

    def run(self, *args, timeout=300) -> subprocess.CompletedProcess:
        return subprocess.run([self.python, "-m", SERVICE, *args], env=self.environ, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, name: str, *args, module: str = SERVICE):
        """Start ``<service> name args`` (or ``module args`` for another program) in a session of its own."""
        log = open(self.logs / f"{name}.log", "w")
        command = [self.python, "-m", module, *((name,) if module == SERVICE else ()), *args]
        self.processes[name] = (subprocess.Popen(command, env=self.environ, cwd=ROOT, stdout=log,
                                                 stderr=subprocess.STDOUT, start_new_session=True), log)

    @contextlib.contextmanager
    def serving(self):
        """The web server, a worker and beat (with whatever was started before) until the block ends; then all
        stopped, their logs printed (pytest shows them when the test failed)."""
        self.start("web")
        # --purge: tasks an interrupted run left in this Redis database point at rows that are gone.
        self.start("worker", "--pool", "solo", "--purge", "--without-mingle", "--without-gossip")
        self.start("beat")
        try:
            self.wait_until_up()
            yield self
            self.alive()
        finally:
            self.stop()
            print(self.log_tail())

    def stop(self):
        for process, _ in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, log in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()

    def log_tail(self) -> str:
        return "\n".join(f"--- {path.name} ---\n" + "\n".join(path.read_text().splitlines()[-40:])
                         for path in sorted(self.logs.glob("*.log")))

    def alive(self):
        dead = {name: process.returncode for name, (process, _) in self.processes.items() if process.poll() is not None}
        assert not dead, f"processes exited: {dead}\n{self.log_tail()}"

    def wait_until_up(self, seconds=STARTUP_SECONDS):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.alive()
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"the web server did not answer within {seconds}s\n{self.log_tail()}")

    def graphql(self, token: str, query: str, variables: dict | None = None) -> dict:
        """The App's API as its Dashboard pages call it; fails on any GraphQL error."""
        request = urllib.request.Request(
            f"{self.url}{PLUGIN_PATH}graphql/", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, body = answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{exc.code}: {exc.read()[:2000]!r}") from None
        assert status == 200 and not body.get("errors"), body
        return body["data"]


TURN_ON = """mutation($template: String!) { flowCreateFromTemplate(input: {template: $template, publish: true}) {
  errors { field code message } flow { slug status } } }"""
CREATE = """mutation($name: String!, $definition: JSON!) { flowCreate(input: {name: $name, definition: $definition}) {
  errors { field code message } flow { id } } }"""
PUBLISH = """mutation($id: ID!) { flowPublish(id: $id) { errors { field code message } flow { slug status } } }"""


def turn_on_journeys(service: AppProcesses, token: str):
    """What a merchant does in the Dashboard: two journeys as they ship, the cart reminder with a shorter first wait."""
    for template in ("welcome", "post_purchase"):
        result = service.graphql(token, TURN_ON, {"template": template})["flowCreateFromTemplate"]
        assert result["errors"] == [] and result["flow"]["status"] == "LIVE", result
    cart = load_journey("abandoned_checkout")
    assert cart["steps"]["wait_1h"]["duration"] == {"hours": 1}
    cart["steps"]["wait_1h"]["duration"] = {"seconds": 2}
    created = service.graphql(token, CREATE, {"name": "Abandoned checkout", "definition": cart})["flowCreate"]
    assert created["errors"] == [], created
    published = service.graphql(token, PUBLISH, {"id": created["flow"]["id"]})["flowPublish"]
    assert published["errors"] == [] and published["flow"]["status"] == "LIVE", published
