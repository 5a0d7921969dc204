"""Where a webhook step may go (issue 11, item 4): public addresses only, unless the host allow-lists more.

Everything here talks to real HTTP servers on 127.0.0.1 and nowhere else.
Names that should look internal are made to resolve through the documented
seam ``webhook.resolve`` (to 127.0.0.1, or to private addresses that are
refused before any connection is made).
"""

import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from saleor_flows.channels import webhook
from saleor_flows.engine.definition import DefinitionError, validate_definition
from saleor_flows.models import StepExecution, TrailEntry

from .flowkit import chain

NAME = "crm.flows.invalid"  # .invalid never resolves for real: a lookup that escaped the seam fails, sends nothing


class Receiver:
    """A loopback HTTP server that answers every request with ``status`` (and ``location``) and keeps them."""

    def __init__(self, status=200, location=None):
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - a followed 301/302 arrives as a GET
                self.do_POST()

            def do_POST(self):  # noqa: N802 - http.server's naming
                receiver.requests.append((self.path, dict(self.headers)))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def lookups(monkeypatch):
    """Resolve names through a table (the seam); every lookup is counted."""
    table, calls = {}, []

    def resolve(host, port):
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    monkeypatch.setattr(webhook, "resolve", resolve)
    return table, calls


def allow(settings, *targets, **more):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "WEBHOOK_ALLOWED_TARGETS": list(targets), **more}


def hook_flow(url):
    return chain("go", ("crm", {"type": "webhook", "url": url, "body": {"note": "{{ shop.name }}"}, "next": None}))


def trail_errors(email="jane@example.com"):
    return [entry.detail.get("error") for entry in TrailEntry.objects.filter(
        contact__email=email, kind__in=["failed", "retry_scheduled"]).order_by("pk")]


# --- send time: the real HTTP path ---------------------------------------------------------


def test_a_local_receiver_is_refused_by_default(flows, servers, lookups):
    table, _ = lookups
    server = servers()
    table[NAME] = ["127.0.0.1"]
    flows.flow(hook_flow(f"http://{NAME}:{server.port}/hook"))
    flows.event("go", email="jane@example.com")
    assert server.requests == []
    execution = StepExecution.objects.get(step_id="crm")
    assert (execution.state, execution.attempts) == ("failed", 1)  # a refused target is not retried
    assert trail_errors() == ["target refused"]


def test_an_allow_listed_network_is_reached_at_the_address_that_was_checked(flows, servers, lookups, settings):
    table, calls = lookups
    server = servers()
    table[NAME] = ["127.0.0.1"]
    allow(settings, "127.0.0.1/32")
    flows.flow(hook_flow(f"http://{NAME}:{server.port}/hook?x=1"))
    flows.event("go", email="jane@example.com")
    ((path, headers),) = server.requests
    assert path == "/hook?x=1" and headers["Host"] == f"{NAME}:{server.port}"  # the name, at the pinned address
    assert calls == [NAME]  # one lookup: nothing a second DNS answer could rebind
    assert StepExecution.objects.get(step_id="crm").state == "done"


def test_an_allow_listed_host_name_is_reached(flows, servers, lookups, settings):
    table, _ = lookups
    server = servers()
    table[NAME] = ["127.0.0.1"]
    allow(settings, NAME.upper())
    flows.flow(hook_flow(f"http://{NAME}:{server.port}/hook"))
    flows.event("go", email="jane@example.com")
    assert len(server.requests) == 1


def test_a_flow_published_with_an_internal_address_is_stopped_when_the_allow_list_no_longer_has_it(
        flows, servers, settings):
    server = servers()
    allow(settings, "127.0.0.0/8")
    flows.flow(hook_flow(f"http://2130706433:{server.port}/hook"))  # 127.0.0.1 written as one decimal number
    allow(settings)
    flows.event("go", email="jane@example.com")
    assert server.requests == []
    assert trail_errors() == ["target refused"]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(flows, servers, lookups, settings, status):
    table, _ = lookups
    internal = servers()
    front = servers(status=status, location=f"http://127.0.0.1:{internal.port}/admin")
    table[NAME] = ["127.0.0.1"]
    allow(settings, NAME, WEBHOOK_MAX_ATTEMPTS=1)  # the name is let in, the loopback address itself is not
    flows.flow(hook_flow(f"http://{NAME}:{front.port}/hook"))
    flows.event("go", email="jane@example.com")
    assert len(front.requests) == 1 and internal.requests == []
    assert trail_errors() == ["HTTP 3xx (redirects are not followed)"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_trail_never_says_which_ports_are_open(flows, servers, lookups, settings):
    table, _ = lookups
    table[NAME] = ["127.0.0.1"]
    open_server, closed = servers(status=500), _closed_port()
    allow(settings, "127.0.0.1/32", WEBHOOK_MAX_ATTEMPTS=1)
    flows.flow(chain("go", ("a", {"type": "webhook", "url": f"http://{NAME}:{closed}/", "next": "b"}),
                     ("b", {"type": "webhook", "url": f"http://{NAME}:{open_server.port}/", "next": "c"}),
                     ("c", {"type": "webhook", "url": "http://no-such-host.flows.invalid/", "next": None})))
    flows.event("go", email="jane@example.com")
    assert trail_errors() == ["connection failed", "HTTP 5xx", "connection failed"]
    results = " ".join(str(e.result) for e in StepExecution.objects.all())
    assert str(closed) not in results and "refused" not in results.lower() and "errno" not in results.lower()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_deadline(flows, lookups, settings):
    table, _ = lookups
    table[NAME] = ["127.0.0.1"]
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle():  # one header byte at a time, each well inside the per-read timeout
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.wait(0.2):
                try:
                    connection.sendall(b"X")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    allow(settings, "127.0.0.1/32", WEBHOOK_TIMEOUT_SECONDS=1, WEBHOOK_MAX_ATTEMPTS=1)
    flows.flow(hook_flow(f"http://{NAME}:{listener.getsockname()[1]}/"))
    started = time.monotonic()
    flows.event("go", email="jane@example.com")
    elapsed = time.monotonic() - started
    stop.set()
    listener.close()
    assert trail_errors() == ["timeout"]
    assert elapsed < 5  # one deadline for the whole request, not one per byte


def test_a_name_server_that_never_answers_is_cut_off_at_the_same_deadline(flows, monkeypatch, settings):
    # getaddrinfo has no timeout of its own; a resolver stuck on a dead name server must not hold the worker.
    released = threading.Event()

    def stuck(host, port):
        released.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(webhook, "resolve", stuck)
    allow(settings, WEBHOOK_TIMEOUT_SECONDS=1, WEBHOOK_MAX_ATTEMPTS=1)
    flows.flow(hook_flow(f"http://{NAME}/"))
    started = time.monotonic()
    flows.event("go", email="jane@example.com")
    elapsed = time.monotonic() - started
    released.set()
    assert trail_errors() == ["timeout"]
    assert elapsed < 5


# --- the address check itself (no connection is made) ---------------------------------------

INTERNAL_URLS = [
    "http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/",
    "http://0.0.0.0/", "http://0/", "http://localhost:8000/", "http://api.localhost/",
    "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://224.0.0.1/", "http://240.0.0.1/",
    "http://255.255.255.255/", "http://[::1]/", "http://[::]/", "http://[fd00::1]/", "http://[fe80::1]/",
    "http://[ff02::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:7f00:1::]/", "https://[::ffff:10.0.0.1]:8443/x",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_addresses_are_refused_at_publish(url):
    (problem,) = validate_definition(hook_flow(url))
    assert problem.startswith("steps.crm.url: ") and "WEBHOOK_ALLOWED_TARGETS" in problem


@pytest.mark.parametrize("url", ["ftp://example.com/", "http:///hook", "example.com/hook",
                                 "http://ex ample.com:99999/"])
def test_only_http_urls_with_a_host_are_published(url):
    (problem,) = validate_definition(hook_flow(url))
    assert problem.startswith("steps.crm.url: must be an http(s) URL")


def test_public_names_and_addresses_pass_publish_and_allow_listed_ones_too(settings):
    assert validate_definition(hook_flow("https://hooks.example.com/flows")) == []
    assert validate_definition(hook_flow("https://93.184.215.14/flows")) == []
    allow(settings, "10.0.0.0/8", "localhost")
    assert validate_definition(hook_flow("http://10.1.2.3:8080/")) == []
    assert validate_definition(hook_flow("http://localhost:8080/")) == []
    with pytest.raises(DefinitionError):
        from saleor_flows.engine.definition import compile_definition
        compile_definition(hook_flow("http://192.168.1.1/"))


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "::ffff:127.0.0.1", "localhost", "::1"])
def test_numeric_and_mapped_forms_are_refused_at_send_time_by_what_they_resolve_to(host):
    with pytest.raises(webhook.WebhookError) as refused:
        webhook.checked_address(host, 80)  # the real resolver: these never leave the machine
    assert str(refused.value) == "target refused" and refused.value.retryable is False


def test_every_address_of_a_name_is_checked(lookups):
    table, _ = lookups
    table[NAME] = ["93.184.215.14", "10.0.0.7"]  # refused before connecting to either
    with pytest.raises(webhook.WebhookError, match="^target refused$"):
        webhook.checked_address(NAME, 443)
    table[NAME] = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert webhook.checked_address(NAME, 443) == "93.184.215.14"


# --- https: pinned to the address, verified against the name ----------------------------------


def _certificate(tmp_path, name):
    """A self-signed certificate for ``name`` (and its key), as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.mark.parametrize("served_name, delivered", [(NAME, True), ("other.flows.invalid", False)])
def test_https_connects_to_the_checked_address_and_verifies_the_host_name(
        flows, servers, lookups, settings, monkeypatch, tmp_path, served_name, delivered):
    table, _ = lookups
    table[NAME] = ["127.0.0.1"]
    cert_file, key_file = _certificate(tmp_path, served_name)
    server = servers()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    names_asked = []
    tls.sni_callback = lambda sock, name, context: names_asked.append(name)
    server.server.socket = tls.wrap_socket(server.server.socket, server_side=True)
    trusting = ssl.create_default_context(cafile=str(cert_file))  # this test's certificate instead of the system's
    monkeypatch.setattr(webhook._PinnedHTTPSConnection, "_tls", trusting)
    allow(settings, "127.0.0.1/32", WEBHOOK_MAX_ATTEMPTS=1)
    flows.flow(hook_flow(f"https://{NAME}:{server.port}/hook"))
    flows.event("go", email="jane@example.com")
    assert names_asked == [NAME]  # SNI carries the name, though the socket went to 127.0.0.1
    assert len(server.requests) == (1 if delivered else 0)
    assert trail_errors() == ([] if delivered else ["connection failed"])
