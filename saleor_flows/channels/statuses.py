"""What providers tell us, in our own vocabulary: a delivery or engagement status, an inbound text.

The provider adapters (``channels/sms/*``, ``tracking/anymail.py``) build these
from a webhook; the engine acts on them (``engine/engagement.py``,
``engine/inbound.py``). They live here, below the engine, so that a provider
module never imports the engine.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class DeliveryStatus:
    """One provider event, in our vocabulary (``MessageEvent.Type``)."""

    provider: str
    type: str
    occurred_at: datetime
    channel: str = "email"  # "email" or "sms": which address space ``recipient`` belongs to
    event_id: str = ""  # the provider's own id; a digest of the event is used when empty
    send_id: str = ""  # ours (anymail metadata, our headers, our signed links)
    provider_message_id: str = ""
    recipient: str = ""
    url: str = ""
    machine: bool = False  # an open or click that looks machine-generated
    reason: str = ""  # bounce/reject reason, the provider's description
    detail: dict = field(default_factory=dict)

    def key(self) -> str:
        if self.event_id:
            return self.event_id[:255]
        digest = hashlib.sha256(json.dumps(
            [self.type, self.send_id, self.provider_message_id, self.recipient, self.url,
             self.occurred_at.isoformat()], sort_keys=True).encode()).hexdigest()
        return f"sha256:{digest}"


@dataclass(frozen=True)
class InboundSms:
    provider: str
    event_id: str  # the provider's id for the message: a retried webhook is handled once
    from_number: str
    to_number: str
    body: str
    occurred_at: datetime
    detail: dict = field(default_factory=dict)
