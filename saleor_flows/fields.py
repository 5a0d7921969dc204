"""The vocabulary shared by conditions and templates: which contact fields exist and their types.

Conditions (``contact.order_count``) and email templates (``{{ contact.first_name }}``)
are both validated against this table at publish time, so a typo is an error
that names the step, not a crash at send time.
"""

# Types: "string", "number", "datetime", "bool", "list" (of strings), "any".
CONTACT_FIELDS = {
    "id": "number",
    "email": "string",
    "user_id": "string",
    "phone": "string",
    "first_name": "string",
    "last_name": "string",
    "locale": "string",
    "timezone": "string",
    "order_count": "number",
    "total_spent": "number",
    "currency": "string",
    "first_order_at": "datetime",
    "last_order_at": "datetime",
    "created_at": "datetime",
    # Predictions from order history (engine/predictive.py, docs/predictive.md).
    "predicted_next_order_at": "datetime",
    "churn_risk": "number",  # 0..1: probability of no order in the next 90 days
    "historic_clv": "number",  # spent so far
    "predicted_clv": "number",  # expected spend in the next 365 days
    "predicted_at": "datetime",
    "tags": "list",
    "lists": "list",
    "email_consent": "string",  # subscribed / unsubscribed / never
    "sms_consent": "string",
    "suppressed": "bool",
    "attributes": "any",  # custom fields: contact.attributes.<name>
}

# Top-level names a template may use. `event` is the trigger event's payload.
# `recommendations(limit=3)` is a function: the products engine/recommendations.py chose for this message.
TEMPLATE_ROOTS = {"contact", "event", "shop", "flow", "message", "unsubscribe_url", "preferences_url",
                  "recommendations"}

SHOP_FIELDS = {"name", "url", "logo_url", "currency", "address", "support_email", "best_sellers_url",
               "new_arrivals_url"}
FLOW_FIELDS = {"name", "slug"}
MESSAGE_FIELDS = {"send_id"}
