"""A real HTTP server on 127.0.0.1 standing in for an SMS provider's API (the only thing we fake).

Backends talk to it through their ``base_url`` setting with real sockets and
real urllib; tests queue the answers and assert the exact requests.
"""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


class FakeProvider:
    def __init__(self):
        self.requests: list[Seen] = []
        self.answers: list[tuple[int, object]] = []
        self.files: dict[str, bytes] = {}  # GET path -> body (certificates, confirmation URLs)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append(Seen("POST", self.path, dict(self.headers.items()), body))
                status, answer = fake.answers.pop(0) if fake.answers else (500, {"message": "no answer queued"})
                self._answer(status, answer if isinstance(answer, bytes) else json.dumps(answer).encode())

            def do_GET(self):
                fake.requests.append(Seen("GET", self.path, dict(self.headers.items()), b""))
                if self.path in fake.files:
                    self._answer(200, fake.files[self.path], "application/x-pem-file")
                else:
                    self._answer(404, b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, status: int, body):
        self.answers.append((status, body))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
