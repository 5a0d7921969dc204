"""The storefront's, the payment app's and the staff's GraphQL calls, run through Saleor's test clients.

Every step is a real mutation of Saleor's schema: Saleor's resolvers, its
transactions and its plugin manager calling our hooks (after commit: Saleor's
``ApiClient.post_graphql`` executes on-commit callbacks, as a real request would).
"""

import uuid

from saleor.graphql.core.utils import to_global_id_or_none
from saleor.graphql.tests.utils import get_graphql_content

ERR = "errors { field code message }"

PLUGIN_UPDATE = f"""
mutation($id: ID!, $input: PluginUpdateInput!) {{
  pluginUpdate(id: $id, input: $input) {{
    plugin {{ id name globalConfiguration {{ active configuration {{ name value }} }} }}
    {ERR}
  }}
}}"""

ACCOUNT_REGISTER = f"""
mutation($input: AccountRegisterInput!) {{
  accountRegister(input: $input) {{ requiresConfirmation user {{ email }} {ERR} }}
}}"""

CHECKOUT_CREATE = f"""
mutation($input: CheckoutCreateInput!) {{
  checkoutCreate(input: $input) {{
    checkout {{ id token email lines {{ quantity variant {{ name product {{ name }} }} }}
      totalPrice {{ gross {{ amount currency }} }} }}
    {ERR}
  }}
}}"""

CHECKOUT_EMAIL_UPDATE = f"""
mutation($id: ID!, $email: String!) {{
  checkoutEmailUpdate(id: $id, email: $email) {{ checkout {{ id email }} {ERR} }}
}}"""

CHECKOUT_SHIPPING_ADDRESS_UPDATE = f"""
mutation($id: ID!, $address: AddressInput!) {{
  checkoutShippingAddressUpdate(id: $id, shippingAddress: $address) {{ checkout {{ id }} {ERR} }}
}}"""

CHECKOUT_BILLING_ADDRESS_UPDATE = f"""
mutation($id: ID!, $address: AddressInput!) {{
  checkoutBillingAddressUpdate(id: $id, billingAddress: $address) {{ checkout {{ id }} {ERR} }}
}}"""

DELIVERY_OPTIONS_CALCULATE = f"""
mutation($id: ID!) {{
  deliveryOptionsCalculate(id: $id) {{ deliveries {{ id shippingMethod {{ id name }} }} {ERR} }}
}}"""

CHECKOUT_SHIPPING_METHODS = "query($id: ID!) { checkout(id: $id) { shippingMethods { id active } } }"

CHECKOUT_DELIVERY_METHOD_UPDATE = f"""
mutation($id: ID!, $deliveryMethodId: ID!) {{
  checkoutDeliveryMethodUpdate(id: $id, deliveryMethodId: $deliveryMethodId) {{
    checkout {{ id totalPrice {{ gross {{ amount currency }} }} }} {ERR}
  }}
}}"""

CHECKOUT_TOTAL = "query($id: ID!) { checkout(id: $id) { totalPrice { gross { amount currency } } chargeStatus } }"

TRANSACTION_CREATE = f"""
mutation($id: ID!, $transaction: TransactionCreateInput!) {{
  transactionCreate(id: $id, transaction: $transaction) {{
    transaction {{ id chargedAmount {{ amount currency }} }} {ERR}
  }}
}}"""

CHECKOUT_COMPLETE = f"""
mutation($id: ID!) {{
  checkoutComplete(id: $id) {{
    order {{ id number status chargeStatus userEmail total {{ gross {{ amount currency }} }} }} {ERR}
  }}
}}"""

ORDER_LINES = """
query($id: ID!) {
  order(id: $id) { id status lines { id quantityToFulfill allocations { quantity warehouse { id } } } }
}"""

ORDER_FULFILL = f"""
mutation($order: ID!, $input: OrderFulfillInput!) {{
  orderFulfill(order: $order, input: $input) {{ order {{ id status }} {ERR} }}
}}"""

US_ADDRESS = {
    "firstName": "Jane", "lastName": "Doe", "streetAddress1": "1470 Pinewood Avenue", "city": "Michigan City",
    "postalCode": "49360", "country": "US", "countryArea": "MI", "phone": "+12025550123",
}


def mutate(client, name: str, query: str, variables: dict, **kwargs) -> dict:
    """Run a mutation through a Saleor test client; fail on GraphQL errors and on the mutation's own errors."""
    if kwargs.get("permissions"):
        kwargs.setdefault("check_no_permissions", False)
    content = get_graphql_content(client.post_graphql(query, variables, **kwargs))
    result = content["data"][name]
    assert result is not None, f"{name} returned null"
    assert not result.get("errors"), f"{name} errors: {result['errors']}"
    return result


def query(client, document: str, variables: dict, **kwargs) -> dict:
    if kwargs.get("permissions"):
        kwargs.setdefault("check_no_permissions", False)
    return get_graphql_content(client.post_graphql(document, variables, **kwargs))["data"]


def gid(instance) -> str:
    return to_global_id_or_none(instance)


def register(api_client, email: str, *, channel: str, consent: bool = True, first_name="Jane"):
    metadata = [{"key": "marketing_consent", "value": "true" if consent else "false"}]
    return mutate(api_client, "accountRegister", ACCOUNT_REGISTER, {"input": {
        "email": email, "password": "Secret-pass-123", "firstName": first_name, "lastName": "Doe",
        "channel": channel, "metadata": metadata, "redirectUrl": "https://www.example.com/account-confirm/",
    }})


def create_checkout(client, *, channel: str, variant, email: str | None, quantity: int = 1) -> dict:
    checkout_input = {"channel": channel, "lines": [{"variantId": gid(variant), "quantity": quantity}]}
    if email:
        checkout_input["email"] = email
    return mutate(client, "checkoutCreate", CHECKOUT_CREATE, {"input": checkout_input})["checkout"]


def set_checkout_email(client, checkout_id: str, email: str) -> dict:
    return mutate(client, "checkoutEmailUpdate", CHECKOUT_EMAIL_UPDATE, {"id": checkout_id, "email": email})["checkout"]


def prepare_for_payment(client, checkout_id: str) -> dict:
    """Addresses and a delivery method: what a storefront sets before taking payment."""
    mutate(client, "checkoutShippingAddressUpdate", CHECKOUT_SHIPPING_ADDRESS_UPDATE,
           {"id": checkout_id, "address": US_ADDRESS})
    mutate(client, "checkoutBillingAddressUpdate", CHECKOUT_BILLING_ADDRESS_UPDATE,
           {"id": checkout_id, "address": US_ADDRESS})
    deliveries = mutate(client, "deliveryOptionsCalculate", DELIVERY_OPTIONS_CALCULATE,
                        {"id": checkout_id})["deliveries"]
    if deliveries:
        delivery_id = deliveries[0]["id"]
    else:  # before 3.23: the (now deprecated) shipping method ids
        methods = query(client, CHECKOUT_SHIPPING_METHODS, {"id": checkout_id})["checkout"]["shippingMethods"]
        delivery_id = next(m["id"] for m in methods if m["active"])
    return mutate(client, "checkoutDeliveryMethodUpdate", CHECKOUT_DELIVERY_METHOD_UPDATE,
                  {"id": checkout_id, "deliveryMethodId": delivery_id})["checkout"]


def pay(app_api_client, checkout_id: str, permission_manage_payments) -> dict:
    """The payment app records a charge for the checkout's total (transactionCreate, HANDLE_PAYMENTS)."""
    total = query(app_api_client, CHECKOUT_TOTAL, {"id": checkout_id})["checkout"]["totalPrice"]["gross"]
    return mutate(app_api_client, "transactionCreate", TRANSACTION_CREATE, {"id": checkout_id, "transaction": {
        "name": "Test payment", "pspReference": f"psp-{uuid.uuid4().hex[:12]}",
        "amountCharged": {"amount": total["amount"], "currency": total["currency"]},
        "availableActions": ["REFUND"],
    }}, permissions=[permission_manage_payments])


def complete(client, checkout_id: str) -> dict:
    return mutate(client, "checkoutComplete", CHECKOUT_COMPLETE, {"id": checkout_id})["order"]


def fulfill(staff_api_client, order_id: str) -> dict:
    """Ship every line from its allocations (the staff user needs MANAGE_ORDERS in a group with channel access)."""
    order = query(staff_api_client, ORDER_LINES, {"id": order_id})["order"]
    lines = [{"orderLineId": line["id"],
              "stocks": [{"quantity": a["quantity"], "warehouse": a["warehouse"]["id"]}
                         for a in line["allocations"] if a["quantity"] > 0]}
             for line in order["lines"] if line["quantityToFulfill"] > 0]
    return mutate(staff_api_client, "orderFulfill", ORDER_FULFILL, {
        "order": order_id, "input": {"lines": lines, "notifyCustomer": False, "trackingNumber": "TRACK-123"},
    })["order"]


VARIANT_STOCKS_UPDATE = f"""
mutation($variantId: ID!, $stocks: [StockInput!]!) {{
  productVariantStocksUpdate(variantId: $variantId, stocks: $stocks) {{
    productVariant {{ id stocks {{ quantity }} }} {ERR}
  }}
}}"""


def restock(staff_api_client, variant, warehouse, quantity: int, permission_manage_products) -> dict:
    return mutate(staff_api_client, "productVariantStocksUpdate", VARIANT_STOCKS_UPDATE, {
        "variantId": gid(variant), "stocks": [{"warehouse": gid(warehouse), "quantity": quantity}],
    }, permissions=[permission_manage_products])


ACCOUNT_UPDATE = f"""
mutation($input: AccountInput!) {{
  accountUpdate(input: $input) {{ user {{ email firstName }} {ERR} }}
}}"""

UPDATE_METADATA = f"""
mutation($id: ID!, $input: [MetadataInput!]!) {{
  updateMetadata(id: $id, input: $input) {{ item {{ metadata {{ key value }} }} {ERR} }}
}}"""


def tick_checkout_box(client, checkout_id: str, value: str = "true") -> dict:
    """The checkout page's "email me news and offers" box: the consent key in the checkout's public metadata."""
    return mutate(client, "updateMetadata", UPDATE_METADATA, {
        "id": checkout_id, "input": [{"key": "marketing_consent", "value": value}]})


def set_consent_metadata(client, user, value: str) -> dict:
    """What a storefront's newsletter checkbox does: the consent key in the user's public metadata."""
    return mutate(client, "updateMetadata", UPDATE_METADATA, {
        "id": gid(user), "input": [{"key": "marketing_consent", "value": value}]})
