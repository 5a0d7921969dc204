"""Serving the built Dashboard bundle (``static/``, Vite's output) from the plugin's URL, without Node.

``app/`` answers ``index.html``, never cached (it names the current hashed
assets), with a Content-Security-Policy that lets the Saleor Dashboard embed
it (``frame-ancestors``, ``DASHBOARD_FRAME_ANCESTORS``) and nothing else
load code into it. ``app/assets/<file>`` answers the hashed assets, cached
for a year as immutable, with their content type and ``nosniff``. A path
that leaves ``static/assets/`` (``..``, absolute, hidden files, backslashes)
is refused, and a missing bundle gets a page that says what to do.
"""

import mimetypes
from pathlib import Path

from django.http import FileResponse, HttpResponse, HttpResponseNotFound, HttpResponseRedirect
from django.utils.html import escape
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe

from ..conf import flows_setting

STATIC_DIR = Path(__file__).resolve().parent / "static"
ONE_YEAR = 365 * 24 * 3600
MAX_ASSET_PATH = 300
# Explicit for what Vite emits: the platform's mimetypes table varies (e.g. .js as application/javascript or
# text/plain on some systems, .woff2 missing).
CONTENT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json",
                 ".map": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
                 ".webp": "image/webp", ".ico": "image/x-icon", ".woff": "font/woff", ".woff2": "font/woff2",
                 ".ttf": "font/ttf", ".wasm": "application/wasm", ".txt": "text/plain; charset=utf-8"}


def content_security_policy() -> str:
    ancestors = flows_setting("DASHBOARD_FRAME_ANCESTORS") or "*"
    if isinstance(ancestors, (list, tuple)):
        ancestors = " ".join(ancestors)
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob: https:; font-src 'self' data:; connect-src 'self'; "
            "frame-src 'self' blob: data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
            f"frame-ancestors {ancestors}")


def _security_headers(response, *, csp: bool):
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "strict-origin-when-cross-origin"
    if csp:
        response["Content-Security-Policy"] = content_security_policy()
    return response


@xframe_options_exempt  # the Dashboard embeds the page; frame-ancestors says by whom
@require_safe
def index(request):
    if not request.path.endswith("/"):
        # The bundle's URLs are relative ("./assets/…"): they resolve only from "app/".
        return HttpResponseRedirect(request.path + "/")
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        return _security_headers(missing_bundle(), csp=True)
    response = HttpResponse(page.read_bytes(), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    return _security_headers(response, csp=True)


@require_safe
def asset(request, name: str):
    path = _asset_path(name)
    if path is None:
        return _security_headers(HttpResponseNotFound("Not found", content_type="text/plain"), csp=False)
    content_type = CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] \
        or "application/octet-stream"
    response = FileResponse(path.open("rb"), content_type=content_type)
    response["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    response["Access-Control-Allow-Origin"] = "*"  # fonts and module scripts are fetched in CORS mode
    return _security_headers(response, csp=False)


def _asset_path(name: str) -> Path | None:
    """The file under ``static/assets/`` that ``name`` names, or None for anything else."""
    if not name or len(name) > MAX_ASSET_PATH or "\\" in name or "\x00" in name:
        return None
    parts = name.split("/")
    if any(not part or part.startswith(".") for part in parts):
        return None  # "..", ".", hidden files, empty segments, absolute paths
    root = (STATIC_DIR / "assets").resolve()
    path = (root / Path(*parts)).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def missing_bundle() -> HttpResponse:
    text = ("The Flows dashboard is not built into this installation (saleor_flows/dashboard/static/ is "
            "missing). Reinstall the package from a release (pip install saleor-flows), or, in a development "
            "checkout, build it: cd dashboard-extension && npm ci && npm run build.")
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Flows: dashboard not built"
            f"</title></head><body style=\"font-family:sans-serif;max-width:40rem;margin:3rem auto\">"
            f"<h1>Flows</h1><p>{escape(text)}</p></body></html>")
    response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
