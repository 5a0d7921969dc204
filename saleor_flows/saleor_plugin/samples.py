"""The shop's own products for previews: the Saleor edge's answer to ``engine.samples.set_product_source``.

A merchant previewing a template sees their catalogue (names, prices,
variants) rather than our sample tee. Read-only, a handful of rows, and any
failure falls back to the built-in samples.
"""

from graphene import Node

from ..conf import flows_setting


def shop_products(limit: int) -> list[dict]:
    from saleor.product.models import ProductVariantChannelListing

    listings = (ProductVariantChannelListing.objects.filter(price_amount__isnull=False, variant__product__isnull=False)
                .select_related("variant__product").order_by("variant__product_id", "variant_id")[: limit * 4])
    shop_url = str((flows_setting("SHOP") or {}).get("url") or "").rstrip("/")
    out, seen = [], set()
    for listing in listings:
        variant, product = listing.variant, listing.variant.product
        if product.pk in seen:
            continue  # one line per product reads like a real cart
        seen.add(product.pk)
        out.append({"product_name": product.name, "variant_name": variant.name or "", "sku": variant.sku or "",
                    "variant_id": Node.to_global_id("ProductVariant", variant.pk),
                    "price": str(listing.price_amount), "currency": listing.currency, "thumbnail": "",
                    "product_url": f"{shop_url}/products/{product.slug}/" if shop_url else ""})
        if len(out) >= limit:
            break
    return out
