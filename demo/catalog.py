"""Northwind Outfitters' catalog: what the demo's recommendations, images and shop pages are made of.

``CATALOG`` is the shop's ``Catalog`` (``saleor_flows/catalog.py``), named by
the demo's ``CATALOG`` setting: products with categories, a German name each,
prices in USD, and one product sold out (so the stock rule shows).

``write_shop(folder)`` writes the storefront's pages the emails link to
(home, each product, the best-sellers and new-arrivals collections, a
checkout page standing for every cart link) and the
product images, as the static site ``<folder>/`` at the storefront's own
paths, so the outbox's ``.html`` files can be read offline (``demo/outbox.py``
points their links and images there).
"""

import html
import struct
import zlib
from pathlib import Path

from saleor_flows.catalog import Catalog

from .store import CATALOGUE, SHOP_URL, THUMBNAILS

CATEGORIES = {
    "merino-crew-sweater": "knitwear", "flannel-overshirt": "shirts", "organic-cotton-tee": "shirts",
    "waxed-canvas-jacket": "outerwear", "packable-rain-shell": "outerwear", "selvedge-denim-jeans": "trousers",
    "trail-runner-sneakers": "footwear", "hiking-socks-3-pack": "footwear", "wool-beanie": "accessories",
    "leather-belt": "accessories", "canvas-weekender-bag": "accessories", "insulated-water-bottle": "accessories",
}
GERMAN = {
    "merino-crew-sweater": "Merino-Pullover", "waxed-canvas-jacket": "Gewachste Canvas-Jacke",
    "trail-runner-sneakers": "Trail-Laufschuhe", "organic-cotton-tee": "Bio-Baumwoll-T-Shirt",
    "selvedge-denim-jeans": "Selvedge-Jeans", "wool-beanie": "Wollmütze", "leather-belt": "Ledergürtel",
    "canvas-weekender-bag": "Canvas-Reisetasche", "insulated-water-bottle": "Isolierflasche",
    "flannel-overshirt": "Flanell-Overshirt", "hiking-socks-3-pack": "Wandersocken (3er-Pack)",
    "packable-rain-shell": "Packbare Regenjacke",
}
SOLD_OUT = {"packable-rain-shell"}
NEW_ARRIVALS = ["flannel-overshirt", "packable-rain-shell", "insulated-water-bottle", "trail-runner-sneakers"]
BEST_SELLERS = ["organic-cotton-tee", "merino-crew-sweater", "selvedge-denim-jeans", "wool-beanie"]
_PRODUCTS = {slug: (name, price) for slug, name, _, price in CATALOGUE}


def product_url(slug: str) -> str:
    return f"{SHOP_URL}/products/{slug}/"


class DemoCatalog(Catalog):
    def lookup(self, *, product_id="", variant_id="", channel=""):
        found = self.products([product_id], channel=channel).get(product_id)
        return found and {key: found[key] for key in ("product_name", "product_url", "thumbnail", "price", "currency")}

    def products(self, product_ids, *, channel, language=""):
        found = {}
        for slug in product_ids:
            if slug in _PRODUCTS:
                name, price = _PRODUCTS[slug]
                found[slug] = {"product_id": slug, "product_name": GERMAN[slug] if language[:2] == "de" else name,
                               "product_url": product_url(slug), "thumbnail": f"{THUMBNAILS}/{slug}.png",
                               "price": price, "currency": "USD", "in_stock": slug not in SOLD_OUT}
        return found

    def similar(self, product_ids, *, channel, limit):
        categories = {CATEGORIES.get(slug) for slug in product_ids}
        return [slug for slug in _PRODUCTS if CATEGORIES[slug] in categories and slug not in product_ids][:limit]


CATALOG = DemoCatalog()


# --- The storefront's pages and images, written for reading the outbox offline ---------------------

def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain-coloured PNG (no imaging library needed): every mail client and browser shows PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height, 9)) + chunk(b"IEND", b""))


def _colour(slug: str) -> tuple[int, int, int]:
    digest = zlib.crc32(slug.encode())
    return 90 + digest % 120, 90 + (digest >> 8) % 120, 90 + (digest >> 16) % 120


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · Northwind '
            'Outfitters</title></head><body style="font-family:sans-serif;max-width:44rem;margin:2rem auto">'
            '<p><a href="../../index.html">Northwind Outfitters</a></p>'
            f"<h1>{html.escape(title)}</h1>{body}</body></html>")


def _grid(slugs) -> str:
    items = "".join(
        f'<li><a href="../../products/{slug}/index.html"><img src="../../media/{slug}.png" width="64" alt=""> '
        f"{html.escape(_PRODUCTS[slug][0])}</a> ${_PRODUCTS[slug][1]}{' (sold out)' if slug in SOLD_OUT else ''}</li>"
        for slug in slugs)
    return f'<ul style="list-style:none;padding:0">{items}</ul>'


def write_shop(folder) -> Path:
    """The storefront as static files under ``folder`` (paths as on the storefront, plus index.html)."""
    root = Path(folder)
    (root / "media").mkdir(parents=True, exist_ok=True)
    for slug in _PRODUCTS:
        (root / "media" / f"{slug}.png").write_bytes(_png(128, 128, _colour(slug)))
        page = root / "products" / slug
        page.mkdir(parents=True, exist_ok=True)
        name, price = _PRODUCTS[slug]
        (page / "index.html").write_text(_page(name, (
            f'<img src="../../media/{slug}.png" width="256" alt=""><p>${price} · {CATEGORIES[slug]}'
            f"{' · sold out' if slug in SOLD_OUT else ''}</p><h2>Reviews</h2><p>Be the first to review it.</p>")),
            encoding="utf-8")
    for slug, title, slugs in (("best-sellers", "Best sellers", BEST_SELLERS),
                               ("new-arrivals", "New arrivals", NEW_ARRIVALS)):
        page = root / "collections" / slug
        page.mkdir(parents=True, exist_ok=True)
        (page / "index.html").write_text(_page(title, _grid(slugs)), encoding="utf-8")
    (root / "checkout").mkdir(parents=True, exist_ok=True)
    (root / "checkout" / "index.html").write_text(_page("Your cart", (
        "<p>In the shop this link opens the shopper's own checkout (the link carries its token); "
        "the demo has this one page for all of them.</p>")).replace("../../", "../"), encoding="utf-8")
    home = _page("Northwind Outfitters", _grid(_PRODUCTS)).replace("../../", "")
    (root / "index.html").write_text(home, encoding="utf-8")
    return root
