"""The subscription queries the App registers in its manifest: what each webhook delivery carries.

Each selects exactly what journeys, conditions and the contact profile read
(``shapes.py`` turns the answer into the plugin's payload shape): lines with
the product's name, slug and thumbnail, the variant, prices in the channel's
currency, the language, the user's metadata (consent key, birthday) and the
checkout's and order's metadata (the storefront's newsletter box). Prices
come from fields that never trigger Saleor's synchronous tax webhooks
(``undiscountedUnitPrice`` on checkout lines), so a delivery costs Saleor no
call to a tax App. ``issuedAt`` is always selected: a delivery older than
``APP_WEBHOOK_MAX_AGE_SECONDS`` is refused.
"""

from dataclasses import dataclass

ADDRESS = """
fragment FlowsAddress on Address {
  firstName lastName phone city postalCode countryArea
  country { code }
}"""

USER = """
fragment FlowsUser on User {
  id email firstName lastName isActive isConfirmed dateJoined updatedAt languageCode
  metadata { key value }
  defaultBillingAddress { ...FlowsAddress }
}"""

VARIANT = """
fragment FlowsVariant on ProductVariant {
  id name sku
  product { id name slug thumbnail(size: 256) { url } }
}"""

CHECKOUT = """
fragment FlowsCheckout on Checkout {
  id token email created lastChange languageCode voucherCode
  channel { slug currencyCode }
  user { id email }
  metadata { key value }
  billingAddress { ...FlowsAddress }
  shippingAddress { ...FlowsAddress }
  discount { amount currency }
  lines {
    id quantity
    undiscountedUnitPrice { amount currency }
    variant { ...FlowsVariant }
  }
}"""

ORDER = """
fragment FlowsOrder on Order {
  id number token created status userEmail languageCodeEnum voucherCode checkoutId
  channel { slug currencyCode }
  user { id email }
  metadata { key value }
  billingAddress { ...FlowsAddress }
  shippingAddress { ...FlowsAddress }
  total { gross { amount currency } net { amount } }
  undiscountedTotal { gross { amount } }
  shippingPrice { gross { amount } }
  lines {
    id productName variantName productSku productVariantId quantity
    unitPrice { gross { amount currency } }
    totalPrice { gross { amount } }
    thumbnail(size: 256) { url }
    variant { id product { id slug } }
  }
}"""

STOCK_VARIANT = """
fragment FlowsStockVariant on ProductVariant {
  id name sku
  product { id name slug thumbnail(size: 256) { url } }
  stocks { quantity quantityAllocated }
}"""

FRAGMENTS = {"FlowsAddress": ADDRESS, "FlowsUser": USER, "FlowsVariant": VARIANT, "FlowsCheckout": CHECKOUT,
             "FlowsOrder": ORDER, "FlowsStockVariant": STOCK_VARIANT}


@dataclass(frozen=True)
class Webhook:
    event: str  # Saleor's WebhookEventTypeAsyncEnum, e.g. "ORDER_CREATED"
    typename: str  # the subscription payload's __typename, e.g. "OrderCreated"
    selection: str  # what is selected inside "... on <typename> { }"
    permission: str  # the App permission Saleor requires for the event

    @property
    def hook(self) -> str:
        """The plugin hook of the same meaning (``translate.EVENT_NAMES``' keys): ``"order_created"``."""
        return self.event.lower()

    @property
    def query(self) -> str:
        body = f"subscription {{ event {{ __typename issuedAt ... on {self.typename} {{ {self.selection} }} }} }}"
        used = _used_fragments(self.selection)
        return body + "".join(FRAGMENTS[name] for name in used)


def _used_fragments(text: str) -> list[str]:
    """Fragments spread in ``text``, with those they spread in turn, in a stable order."""
    found: list[str] = []
    pending = [text]
    while pending:
        chunk = pending.pop()
        for name in FRAGMENTS:
            if f"...{name}" in chunk and name not in found:
                found.append(name)
                pending.append(FRAGMENTS[name])
    return sorted(found)


USERS, CHECKOUTS, ORDERS, PRODUCTS = "MANAGE_USERS", "MANAGE_CHECKOUTS", "MANAGE_ORDERS", "MANAGE_PRODUCTS"
_USER = "user { ...FlowsUser }"
_CHECKOUT = "checkout { ...FlowsCheckout }"
_ORDER = "order { ...FlowsOrder }"

WEBHOOKS = [
    Webhook("CUSTOMER_CREATED", "CustomerCreated", _USER, USERS),
    Webhook("CUSTOMER_UPDATED", "CustomerUpdated", _USER, USERS),
    Webhook("CUSTOMER_METADATA_UPDATED", "CustomerMetadataUpdated", _USER, USERS),
    Webhook("CUSTOMER_DELETED", "CustomerDeleted", _USER, USERS),
    Webhook("ACCOUNT_CONFIRMED", "AccountConfirmed", _USER, USERS),
    Webhook("ACCOUNT_DELETED", "AccountDeleted", _USER, USERS),
    Webhook("CHECKOUT_CREATED", "CheckoutCreated", _CHECKOUT, CHECKOUTS),
    Webhook("CHECKOUT_UPDATED", "CheckoutUpdated", _CHECKOUT, CHECKOUTS),
    Webhook("CHECKOUT_FULLY_PAID", "CheckoutFullyPaid", _CHECKOUT, CHECKOUTS),
    Webhook("CHECKOUT_METADATA_UPDATED", "CheckoutMetadataUpdated", _CHECKOUT, CHECKOUTS),
    Webhook("ORDER_CREATED", "OrderCreated", _ORDER, ORDERS),
    Webhook("ORDER_CONFIRMED", "OrderConfirmed", _ORDER, ORDERS),
    Webhook("ORDER_PAID", "OrderPaid", _ORDER, ORDERS),
    Webhook("ORDER_FULLY_PAID", "OrderFullyPaid", _ORDER, ORDERS),
    Webhook("ORDER_FULFILLED", "OrderFulfilled", _ORDER, ORDERS),
    Webhook("ORDER_CANCELLED", "OrderCancelled", _ORDER, ORDERS),
    Webhook("ORDER_REFUNDED", "OrderRefunded", _ORDER, ORDERS),
    Webhook("ORDER_FULLY_REFUNDED", "OrderFullyRefunded", _ORDER, ORDERS),
    Webhook("ORDER_METADATA_UPDATED", "OrderMetadataUpdated", _ORDER, ORDERS),
    Webhook("FULFILLMENT_CREATED", "FulfillmentCreated",
            "fulfillment { id status trackingNumber created lines { id quantity orderLine { id } } } "
            + _ORDER, ORDERS),
    Webhook("PRODUCT_VARIANT_BACK_IN_STOCK", "ProductVariantBackInStock",
            "productVariant { ...FlowsStockVariant } warehouse { id }", PRODUCTS),
    # A lifecycle event Saleor sends only to the removed App itself: no permission (never MANAGE_APPS) needed.
    Webhook("APP_DELETED", "AppDeleted", "app { id identifier }", ""),
]
BY_EVENT = {webhook.event: webhook for webhook in WEBHOOKS}
# What the App asks for in its manifest: the events' permissions, and the Dashboard API's.
PERMISSIONS = sorted({webhook.permission for webhook in WEBHOOKS} - {""})
