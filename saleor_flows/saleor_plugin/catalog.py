"""Saleor's products as the catalog storefront events are checked against (see ``saleor_flows/catalog.py``).

A storefront's ``trackEvent`` names a product or variant by its global id;
what the shop's mail then shows (name, image, price, link) is read here from
Saleor, for products published in the event's channel only (an unpublished
product's name or image must not be mailable by naming its id).
"""

from ..conf import flows_setting
from .translate import decode_global_id


def _pk(global_id: str, type_name: str) -> int | None:
    decoded = decode_global_id(global_id)
    return int(decoded[1]) if decoded and decoded[0] == type_name and decoded[1].isdigit() else None


def lookup(*, product_id: str = "", variant_id: str = "", channel: str = "") -> dict | None:
    from saleor.core.prices import quantize_price
    from saleor.core.utils import build_absolute_uri
    from saleor.product import ProductMediaTypes
    from saleor.product.models import Product, ProductVariant

    variant = product = None
    variant_pk = _pk(variant_id, "ProductVariant")
    if variant_pk is not None:
        variant = ProductVariant.objects.select_related("product").filter(pk=variant_pk).first()
        product = variant.product if variant else None
    elif (product_pk := _pk(product_id, "Product")) is not None:
        product = Product.objects.filter(pk=product_pk).first()
    if product is None:
        return None
    listings = product.channel_listings.filter(is_published=True)
    if channel:
        listings = listings.filter(channel__slug=channel)
    if not any(listing.is_visible for listing in listings):
        return None
    facts = {"product_name": product.name, "variant_name": variant.name if variant else ""}
    template = flows_setting("PRODUCT_URL_TEMPLATE")
    if template:
        facts["product_url"] = template.replace("{slug}", product.slug).replace(
            "{id}", product_id or _global_id("Product", product.pk))
    media = product.media.filter(type=ProductMediaTypes.IMAGE).exclude(image="").order_by("sort_order", "pk").first()
    if media is not None and media.image:
        facts["thumbnail"] = build_absolute_uri(media.image.url)
    if variant is not None:
        price = variant.channel_listings.filter(channel__slug=channel).first() if channel else None
        if price is not None and price.price_amount is not None:
            facts.update(price=str(quantize_price(price.price_amount, price.currency)), currency=price.currency)
    return facts


def _global_id(type_name: str, pk) -> str:
    import graphene

    return graphene.Node.to_global_id(type_name, pk)
