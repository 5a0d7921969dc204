"""Consent changed in saleor-flows (an unsubscribe link, the preference centre, SMS STOP) → the user's metadata
in Saleor, written with the App token from a task, so the storefront's checkbox never disagrees with the flows.

Email consent goes to ``CONSENT_METADATA_KEY`` (the key storefronts read and
the webhooks bring back, as in plugin mode); SMS consent to the same key
with ``_sms`` appended. What came from Saleor's metadata is not written back.
"""

from ..conf import flows_setting
from ..engine import dispatch
from ..saleor_plugin.translate import decode_global_id

FROM_SALEOR = {"saleor_user_metadata", "saleor_checkout_metadata", "saleor_order_metadata"}


def write_back(sender, contact, channel, status, source, **kwargs):
    key = flows_setting("CONSENT_METADATA_KEY")
    decoded = decode_global_id(contact.user_id)
    if source in FROM_SALEOR or not key or not decoded or decoded[0] != "User" or channel not in ("email", "sms"):
        return
    from . import tasks

    values = {key if channel == "email" else f"{key}_sms": "true" if status == "subscribed" else "false"}
    if dispatch.mode() == "inline":
        tasks.write_metadata.apply(args=(contact.user_id, values))
    else:
        dispatch.publish(tasks.write_metadata, contact.user_id, values)
