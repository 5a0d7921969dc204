"""The App-mode manifest: the Dashboard App's manifest (``dashboard/manifest.py``, one builder for both modes)
with the webhooks, their subscription queries and the permissions they need."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from ..dashboard.manifest import MANIFEST_PATH, build_manifest, plugin_base
from .queries import PERMISSIONS, WEBHOOKS

WEBHOOK_PATH = "saleor/webhooks/{event}/"


def webhooks(base: str) -> list[dict]:
    return [{"name": f"flows-{webhook.hook.replace('_', '-')}", "asyncEvents": [webhook.event],
             "query": webhook.query, "targetUrl": base + WEBHOOK_PATH.format(event=webhook.hook), "isActive": True}
            for webhook in WEBHOOKS]


def app_manifest(base: str) -> dict:
    return build_manifest(base, webhooks=webhooks(base), permissions=PERMISSIONS,
                          data_privacy="Flows keeps its data (contacts, consent with its proof, events, messages) in "
                                       "this App's own database and sends email and SMS through the providers "
                                       "this shop configured.")


@require_GET
def manifest(request):
    response = JsonResponse(app_manifest(plugin_base(request, MANIFEST_PATH)))
    response["Cache-Control"] = "no-cache"
    response["Access-Control-Allow-Origin"] = "*"
    return response
