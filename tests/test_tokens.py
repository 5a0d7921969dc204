"""The signed tokens in our links (unsubscribe, preferences, opt-in confirmation) cannot be forged or altered.

Property tests: whatever single edit is made to a genuine token, whatever salt
or key a forger signs with, and whichever other page a token is shown to, it
never authenticates.
"""

import string

import pytest
from django.core import signing
from hypothesis import HealthCheck, assume, given, settings as hypothesis_settings, strategies as st

from saleor_flows.models import Contact
from saleor_flows.channels import tokens

KINDS = sorted(tokens.SALTS)
kinds = st.sampled_from(KINDS)
contact_ids = st.integers(min_value=1, max_value=2**53)
# Characters a token may contain, plus some it never does (a forger may try anything).
characters = st.sampled_from(string.ascii_letters + string.digits + "-_:.=+/%~ é\x00")


def _refused(kind, token):
    with pytest.raises(tokens.BadToken):
        tokens.read(kind, token)


@given(kind=kinds, contact_id=contact_ids, data=st.data())
def test_any_changed_character_is_refused(kind, contact_id, data):
    token = tokens.make(kind, contact_id, s="send-1")
    assert tokens.read(kind, token)["c"] == contact_id  # the genuine token works
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
    replacement = data.draw(characters.filter(lambda c: c != token[position]), label="replacement")
    _refused(kind, token[:position] + replacement + token[position + 1:])


@given(kind=kinds, contact_id=contact_ids, data=st.data())
def test_deleted_inserted_or_truncated_tokens_are_refused(kind, contact_id, data):
    token = tokens.make(kind, contact_id)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
    edit = data.draw(st.sampled_from(["delete", "insert", "truncate"]), label="edit")
    if edit == "delete":
        altered = token[:position] + token[position + 1:]
    elif edit == "insert":
        altered = token[:position] + data.draw(characters, label="inserted") + token[position:]
    else:
        altered = token[:position]
    assume(altered != token)
    _refused(kind, altered)


@given(kind=kinds, contact_id=contact_ids, salt=st.text(max_size=40))
def test_signing_with_any_other_salt_is_refused(kind, contact_id, salt):
    assume(salt != tokens.SALTS[kind])
    _refused(kind, signing.dumps({"c": contact_id}, salt=salt, compress=True))


@given(kind=kinds, contact_id=contact_ids, key=st.text(min_size=1, max_size=60))
def test_signing_without_the_shops_secret_is_refused(kind, contact_id, key):
    from django.conf import settings

    assume(key != settings.SECRET_KEY)
    forged = signing.dumps({"c": contact_id}, key=key, salt=tokens.SALTS[kind], compress=True)
    _refused(kind, forged)


@given(made_for=kinds, shown_to=kinds, contact_id=contact_ids)
def test_a_token_of_one_type_never_works_for_another(made_for, shown_to, contact_id):
    assume(made_for != shown_to)
    _refused(shown_to, tokens.make(made_for, contact_id))


@given(kind=kinds, payload=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers()),
                                     st.fixed_dictionaries({"c": st.one_of(st.text(), st.floats(), st.booleans(),
                                                                             st.none())})))
def test_a_validly_signed_token_without_a_contact_id_is_refused(kind, payload):
    # Defence in depth: even our own signature on a malformed payload names no one.
    _refused(kind, signing.dumps(payload, salt=tokens.SALTS[kind]))


@given(kind=kinds, contact_id=contact_ids)
def test_tokens_carry_no_readable_personal_data(kind, contact_id):
    token = tokens.make(kind, contact_id, s="send-1")
    assert "@" not in token and "example" not in token.lower()


@pytest.mark.django_db
@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=kinds, data=st.data())
def test_altered_links_change_nothing_through_http(client, flows, kind, data):
    """The same property end to end: an altered link answers 400 and leaves consent as it was."""
    jane = flows.contact("jane@example.com", email_consent="subscribed")
    token = tokens.make(kind, jane.pk, **({"s": "1"} if kind == "unsubscribe" else {}))
    safe = string.ascii_letters + string.digits + "-_:."
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="position")
    replacement = data.draw(st.sampled_from(safe).filter(lambda c: c != token[position]), label="replacement")
    altered = token[:position] + replacement + token[position + 1:]
    response = client.post(f"/plugins/global/saleor.flows/{kind}/{altered}/",
                           {"action": "unsubscribe_all", "List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert Contact.objects.get(pk=jane.pk).email_consent == "subscribed"
