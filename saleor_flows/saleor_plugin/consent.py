"""Consent changes made in saleor-flows (an unsubscribe link, a preference page) written back to Saleor.

Storefronts read and set marketing consent in a user metadata key with
Saleor's own API; keeping that key in step means the storefront's checkbox
never disagrees with what the flows do.
"""

import logging

from ..conf import flows_setting
from .translate import decode_global_id

logger = logging.getLogger(__name__)


def write_back(sender, contact, channel, status, source, **kwargs):
    if channel != "email" or source == "saleor_user_metadata" or not contact.user_id:
        return  # only email consent has a key; what came from Saleor need not go back
    key = flows_setting("CONSENT_METADATA_KEY")
    decoded = decode_global_id(contact.user_id)
    if not key or not decoded or decoded[0] != "User":
        return
    try:
        from saleor.account.models import User
        from saleor.core.db.connection import allow_writer

        with allow_writer():
            user = User.objects.filter(pk=decoded[1]).first()
            if user is not None:
                user.store_value_in_metadata({key: "true" if status == "subscribed" else "false"})
                user.save(update_fields=["metadata", "updated_at"])
    except Exception:
        logger.exception("saleor-flows: could not write consent back to Saleor user %s", contact.user_id)
