"""Saleor's products as the shop's catalog (see ``saleor_flows/catalog.py``).

A storefront's ``trackEvent`` names a product or variant by its global id;
what the shop's mail then shows (name, image, price, link) is read here from
Saleor, for products published in the event's channel only (an unpublished
product's name or image must not be mailable by naming its id).

Recommendations ask for many products at once (``SaleorCatalog.products``:
a handful of queries whatever the count), for products of the same category
or collections (``similar``), and for the channel's best sellers from
Saleor's own order lines (``best_sellers``). Stock is the quantity left in
the channel's warehouses after allocations; a variant that does not track
inventory, or sells on preorder, is always in stock.
"""

import time

from ..catalog import Catalog
from ..conf import flows_setting
from .translate import decode_global_id

BEST_SELLER_DAYS = 90
BEST_SELLER_CACHE_SECONDS = 600
_best_sellers_cache: dict = {}


def _pk(global_id: str, type_name: str) -> int | None:
    decoded = decode_global_id(global_id)
    return int(decoded[1]) if decoded and decoded[0] == type_name and decoded[1].isdigit() else None


def _global_id(type_name: str, pk) -> str:
    import graphene

    return graphene.Node.to_global_id(type_name, pk)


def product_url(slug: str, product_id: str) -> str:
    """The storefront's page of a product (PRODUCT_URL_TEMPLATE), or "" when none is configured."""
    template = flows_setting("PRODUCT_URL_TEMPLATE")
    return template.replace("{slug}", slug).replace("{id}", product_id) if template else ""


def _thumbnails(product_pks) -> dict[int, str]:
    from saleor.core.utils import build_absolute_uri
    from saleor.product import ProductMediaTypes
    from saleor.product.models import ProductMedia

    found = {}
    for media in (ProductMedia.objects.filter(product_id__in=product_pks, type=ProductMediaTypes.IMAGE)
                  .exclude(image="").order_by("product_id", "sort_order", "pk")):
        if media.product_id not in found and media.image:
            found[media.product_id] = build_absolute_uri(media.image.url)
    return found


def _visible(product_pks, channel: str) -> list[int]:
    """Of ``product_pks``, those published and visible in ``channel`` (any channel when "")."""
    from saleor.product.models import ProductChannelListing

    listings = ProductChannelListing.objects.filter(product_id__in=product_pks, is_published=True)
    if channel:
        listings = listings.filter(channel__slug=channel)
    return list(dict.fromkeys(listing.product_id for listing in listings if listing.is_visible))


class SaleorCatalog(Catalog):
    def lookup(self, *, product_id: str = "", variant_id: str = "", channel: str = "") -> dict | None:
        from saleor.core.prices import quantize_price
        from saleor.product.models import Product, ProductVariant

        variant = product = None
        variant_pk = _pk(variant_id, "ProductVariant")
        if variant_pk is not None:
            variant = ProductVariant.objects.select_related("product").filter(pk=variant_pk).first()
            product = variant.product if variant else None
        elif (product_pk := _pk(product_id, "Product")) is not None:
            product = Product.objects.filter(pk=product_pk).first()
        if product is None or not _visible([product.pk], channel):
            return None
        facts = {"product_name": product.name, "variant_name": variant.name if variant else ""}
        url = product_url(product.slug, product_id or _global_id("Product", product.pk))
        if url:
            facts["product_url"] = url
        thumbnail = _thumbnails([product.pk]).get(product.pk)
        if thumbnail:
            facts["thumbnail"] = thumbnail
        if variant is not None:
            price = variant.channel_listings.filter(channel__slug=channel).first() if channel else None
            if price is not None and price.price_amount is not None:
                facts.update(price=str(quantize_price(price.price_amount, price.currency)), currency=price.currency)
        return facts

    def products(self, product_ids, *, channel, language=""):
        from django.db.models import Min, Q
        from saleor.core.prices import quantize_price
        from saleor.product.models import Product, ProductTranslation, ProductVariant, ProductVariantChannelListing
        from saleor.warehouse.models import Stock

        by_pk = {pk: product_id for product_id in product_ids if (pk := _pk(product_id, "Product")) is not None}
        if not channel or not by_pk:
            return {}  # a price needs a channel
        pks = _visible(list(by_pk), channel)
        prices = {row["variant__product_id"]: row for row in (
            ProductVariantChannelListing.objects.filter(
                variant__product_id__in=pks, channel__slug=channel, price_amount__isnull=False)
            .values("variant__product_id", "currency").annotate(lowest=Min("price_amount")))}
        untracked = set(ProductVariant.objects.filter(
            Q(track_inventory=False) | Q(is_preorder=True), product_id__in=pks,
            channel_listings__channel__slug=channel).values_list("product_id", flat=True))
        stocked = set(Stock.objects.for_channel(channel).annotate_available_quantity().filter(
            product_variant__product_id__in=pks, available_quantity__gt=0).values_list(
            "product_variant__product_id", flat=True))
        names = {}
        if language:
            for code in dict.fromkeys([language, language.split("-")[0].split("_")[0]]):
                for translation in ProductTranslation.objects.filter(
                        product_id__in=pks, language_code__iexact=code.replace("_", "-")).exclude(name=None):
                    names.setdefault(translation.product_id, translation.name)
        thumbnails = _thumbnails(pks)
        found = {}
        for product in Product.objects.filter(pk__in=[pk for pk in pks if pk in prices]).only("pk", "name", "slug"):
            price, product_id = prices[product.pk], by_pk[product.pk]
            found[product_id] = {
                "product_id": product_id, "product_name": names.get(product.pk) or product.name,
                "product_url": product_url(product.slug, product_id), "thumbnail": thumbnails.get(product.pk, ""),
                "price": str(quantize_price(price["lowest"], price["currency"])), "currency": price["currency"],
                "in_stock": product.pk in stocked or product.pk in untracked,
            }
        return found

    def similar(self, product_ids, *, channel, limit):
        from saleor.product.models import CollectionProduct, Product

        seeds = [pk for product_id in product_ids if (pk := _pk(product_id, "Product")) is not None]
        if not seeds:
            return []
        categories = Product.objects.filter(pk__in=seeds, category__isnull=False).values("category_id")
        collections = CollectionProduct.objects.filter(product_id__in=seeds).values("collection_id")
        same_category = Product.objects.filter(category_id__in=categories).exclude(pk__in=seeds)
        same_collection = Product.objects.filter(collectionproduct__collection_id__in=collections).exclude(
            pk__in=seeds)
        if channel:
            same_category = same_category.filter(channel_listings__channel__slug=channel)
            same_collection = same_collection.filter(channel_listings__channel__slug=channel)
        found = list(same_category.order_by("-updated_at", "pk").values_list("pk", flat=True)[:limit])
        found += [pk for pk in same_collection.order_by("-updated_at", "pk").values_list("pk", flat=True)[:limit]
                  if pk not in found]
        return [_global_id("Product", pk) for pk in found[:limit]]

    def best_sellers(self, *, channel, limit):
        """Products in the most orders of the channel over the last ``BEST_SELLER_DAYS`` (cached briefly)."""
        from datetime import timedelta

        from django.db.models import Count
        from django.utils import timezone
        from saleor.order.models import OrderLine

        key = (channel, limit)
        cached = _best_sellers_cache.get(key)
        if cached and time.monotonic() - cached[0] < BEST_SELLER_CACHE_SECONDS:
            return list(cached[1])
        lines = OrderLine.objects.filter(order__created_at__gte=timezone.now() - timedelta(days=BEST_SELLER_DAYS),
                                         variant__isnull=False)
        if channel:
            lines = lines.filter(order__channel__slug=channel)
        rows = (lines.values("variant__product_id").annotate(orders=Count("order_id", distinct=True))
                .order_by("-orders", "variant__product_id")[:limit])
        found = [_global_id("Product", row["variant__product_id"]) for row in rows]
        _best_sellers_cache[key] = (time.monotonic(), found)
        return found


CATALOG = SaleorCatalog()
lookup = CATALOG.lookup  # the storefront door's bare lookup, kept for callers of the earlier API
