"""Tracking edges: ESPs' delivery and engagement webhooks through django-anymail, and our
own open pixel and click redirect (``web/tracking.py``), all normalized into
``engine.engagement.DeliveryStatus``. See docs/tracking.md.
"""
