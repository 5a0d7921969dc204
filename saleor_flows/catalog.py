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
"""

from django.utils.module_loading import import_string

from .conf import flows_setting

# What a product event shows: the catalog's answer replaces (or, for an unknown id, removes) these.
PRODUCT_FIELDS = ("product_name", "variant_name", "product_url", "thumbnail", "image", "price", "currency",
                  "sku")
_registered = []


def register_catalog(lookup) -> None:
    """An edge's lookup, used before the ``CATALOG`` setting (the last one registered wins; None removes it)."""
    _registered[:] = [lookup] if lookup is not None else []


def catalog():
    """The host's lookup, or None when it has none (the door then keeps only the shop's own URLs)."""
    if _registered:
        return _registered[0]
    path = flows_setting("CATALOG")
    return import_string(path) if path else None
