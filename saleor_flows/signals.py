"""Signals edges can listen to, so that the engine never has to call a host.

``consent_changed(contact, channel, status, source)`` is sent after a
contact's consent changed and the change is committed; the Saleor edge
writes it back to the user's metadata key so storefronts see it.
"""

from django.dispatch import Signal

consent_changed = Signal()
