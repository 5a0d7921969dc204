"""The shop's own product data, looked up by id: what storefront events may show in mail.

A storefront's ``trackEvent`` names a product it showed; anyone holding the
public key can send one, so the name, link, image and price it carries are
not the shop's word. When the host can look a product up, the door keeps the
storefront's ids and takes everything shown (``PRODUCT_FIELDS``) from here.

The engine never imports a host: an edge registers the lookup. The Saleor
plugin registers one that reads Saleor's products (``saleor_plugin/catalog.py``);
any other Django host names a callable in the ``CATALOG`` setting. A lookup is
``lookup(product_id=..., variant_id=..., channel=...) -> dict | None``: the
product's ``PRODUCT_FIELDS`` it knows, or None for an id it does not know.

Recommendations (``engine/recommendations.py``) need more than one product at
a time: a host that can answer them registers a ``Catalog`` (a subclass that
overrides ``products``, ``similar`` and ``best_sellers``) instead of a bare
lookup. A bare lookup still works: it is asked product by product, knows no
similar products, and the best sellers then come from our own order counts.
"""

from django.utils.module_loading import import_string

from .conf import flows_setting

# What a product event shows: the catalog's answer replaces (or, for an unknown id, removes) these.
PRODUCT_FIELDS = ("product_name", "variant_name", "product_url", "thumbnail", "image", "price", "currency",
                  "sku")
# What a recommended product shows, besides its id: all strings; ``in_stock`` a bool.
RECOMMENDED_FIELDS = ("product_id", "product_name", "product_url", "thumbnail", "price", "currency")
_registered = []


class Catalog:
    """The shop's products for mail, as a host answers for them. Override what the host knows.

    Every method answers for one sales ``channel`` (a slug; "" when the event
    names none): a product not published there is unknown.
    """

    def lookup(self, *, product_id: str = "", variant_id: str = "", channel: str = "") -> dict | None:
        """One product's ``PRODUCT_FIELDS`` (storefront events), or None."""
        return None

    def products(self, product_ids: list[str], *, channel: str, language: str = "") -> dict[str, dict]:
        """``{product_id: facts}`` for the ids the shop sells in ``channel``; facts are ``RECOMMENDED_FIELDS``
        (name in ``language`` when translated, price in the channel's currency) and ``in_stock``
        (False: none left to sell; missing: unknown). Unknown or unpublished ids are left out."""
        found = {}
        for product_id in product_ids:
            facts = self.lookup(product_id=product_id, channel=channel)
            if facts:
                found[product_id] = {**facts, "product_id": product_id}
        return found

    def similar(self, product_ids: list[str], *, channel: str, limit: int) -> list[str]:
        """Up to ``limit`` other products from the same categories or collections, closest first."""
        return []

    def best_sellers(self, *, channel: str, limit: int) -> list[str] | None:
        """The channel's best sellers, best first; None: the host has no view of its sales (ours are used)."""
        return None


class _LookupOnly(Catalog):
    """A host's bare ``lookup`` callable, seen as a ``Catalog``."""

    def __init__(self, lookup):
        self._lookup = lookup

    def lookup(self, **ids):
        return self._lookup(**ids)


def register_catalog(lookup) -> None:
    """An edge's lookup or ``Catalog``, used before the ``CATALOG`` setting (the last one registered wins;
    None removes it)."""
    _registered[:] = [lookup] if lookup is not None else []


def shop_catalog() -> Catalog | None:
    """The host's catalog, or None when it has none."""
    found = _registered[0] if _registered else (import_string(flows_setting("CATALOG"))
                                                if flows_setting("CATALOG") else None)
    if found is None or isinstance(found, Catalog):
        return found
    if isinstance(found, type) and issubclass(found, Catalog):
        return found()
    return _LookupOnly(found)


def catalog():
    """The host's lookup, or None when it has none (the door then keeps only the shop's own URLs)."""
    found = shop_catalog()
    return None if found is None else found.lookup
