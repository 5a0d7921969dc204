"""The Saleor side of the App registration: this Saleor's API URL, and whose token a token is.

Inside Saleor the register endpoint trusts nothing a request says: the API
URL is Saleor's own, and the token is checked against Saleor's ``AppToken``
table as Saleor's ``appTokenVerify`` does (last four characters, then the
password hash).
"""

from django.contrib.auth.hashers import check_password
from django.urls import reverse


def own_api_url() -> str:
    from saleor.core.utils import build_absolute_uri

    return build_absolute_uri(reverse("api"))


def app_of_token(token: str) -> tuple[str, str] | None:
    """(the App's global id, its identifier) for a token of a not-removed App, else None."""
    from graphene import Node
    from saleor.app.models import AppToken

    for row in AppToken.objects.filter(token_last_4=token[-4:], app__removed_at__isnull=True).select_related("app"):
        if check_password(token, row.auth_token):
            return Node.to_global_id("App", row.app_id), row.app.identifier or ""
    return None
