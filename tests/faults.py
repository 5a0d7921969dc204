"""Real processes and sockets that fail on cue, for the fault tests (tests/test_faults_*.py).

A private Redis server the test may stop and start, and a TCP proxy that can
cut every connection through it (what a PostgreSQL restart looks like to its
clients), and an SMTP server (an aiosmtpd handler) that refuses, stalls or
hangs up on cue. All run on free ports of their own: the machine's shared Redis and
PostgreSQL are never touched.
"""

import asyncio
import shutil
import socket
import subprocess
import threading
import time


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, timeout=20.0, interval=0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


class RedisServer:
    """A redis-server of our own, in memory only, on its own port."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self):
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (scripts/ensure-services installs it)")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(self.answers, timeout=10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class CuttableProxy:
    """Forwards TCP connections to ``target``; ``cut()`` drops them all, ``refuse`` turns new ones away."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.refuse = False
        self.connections = 0  # accepted and forwarded, over the proxy's life
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source, sink):
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._drop(sock)

    def _drop(self, sock):
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self):
        """Close every open connection at once, as a server restart does."""
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            self._drop(sock)

    def close(self):
        self._running = False
        self.cut()
        self._listener.close()


class FaultyServer:
    """An aiosmtpd handler whose answers the test picks, one per attempt (then "250")."""

    def __init__(self):
        self.rcpt_answers: list[str] = []  # e.g. "451 4.3.0 try later", "550 5.1.1 no such user"
        self.data_answers: list[str] = []  # e.g. "452 ...", "554 ...", "drop" (hang up), "stall" (answer late)
        self.quit_answer = ""  # "drop" or "stall" at QUIT
        self.rcpt_calls = 0
        self.accepted: list[bytes] = []  # every message body this server received in full
        self.pause = 0.0  # seconds before each answer to DATA (a slow server)
        self.on_message = None  # called with the count of messages received, before the answer

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_calls += 1
        answer = self.rcpt_answers.pop(0) if self.rcpt_answers else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server, session, envelope):
        self.accepted.append(envelope.content)  # it has the message, whatever it answers
        if self.on_message:
            self.on_message(len(self.accepted))
        if self.pause:
            await asyncio.sleep(self.pause)
        answer = self.data_answers.pop(0) if self.data_answers else "250 queued"
        if answer == "drop":
            server.transport.close()
            return "250 never heard"
        if answer == "stall":
            await asyncio.sleep(4)
            return "250 queued, too late"
        return answer

    async def handle_QUIT(self, server, session, envelope):
        if self.quit_answer == "drop":
            server.transport.close()
        elif self.quit_answer == "stall":
            await asyncio.sleep(4)
        return "221 bye"


def serve_smtp(handler):
    """Start an aiosmtpd server with ``handler`` on a free port; returns its controller (``.port``; ``.stop()``)."""
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller
