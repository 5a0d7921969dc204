"""Prebuilt journeys a merchant can start from (offered by the demo and the Saleor plugin).

Each journey lives in ``journeys/<slug>/``: a ``definition.json`` in the format of
``docs/flows.md`` (plus ``name``, ``description`` and ``version``) and one MJML file
per email and language (``en/<step_id>.mjml``, ``de/<step_id>.mjml``). In the JSON a
string ``"@en/email_welcome.mjml"`` stands for the contents of that file;
:func:`load_journey` resolves these references.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from pathlib import PurePosixPath

JOURNEYS = ["welcome", "abandoned_checkout", "post_purchase", "win_back", "browse_abandonment", "birthday", "back_in_stock"]

# Only these keys may hold an "@file" reference; a subject starting with "@" stays text.
_FILE_KEYS = {"mjml"}


class UnknownJourney(KeyError, ValueError):
    """Raised for a slug that is not in :data:`JOURNEYS`."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def _check_slug(slug: str) -> None:
    if slug not in JOURNEYS:
        raise UnknownJourney(f"unknown journey {slug!r}; known journeys: {', '.join(JOURNEYS)}")


def _read_text(slug: str, relative: str) -> str:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"journey {slug!r}: bad file reference {relative!r}")
    node = resources.files(__name__).joinpath(slug, *path.parts)
    if not node.is_file():
        raise ValueError(f"journey {slug!r}: referenced file {relative!r} does not exist")
    return node.read_text(encoding="utf-8")


def _resolve(slug: str, value, key=None):
    if isinstance(value, dict):
        return {k: _resolve(slug, v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(slug, v) for v in value]
    if key in _FILE_KEYS and isinstance(value, str) and value.startswith("@"):
        return _read_text(slug, value[1:])
    return value


@lru_cache(maxsize=None)
def _load(slug: str) -> dict:
    raw = json.loads(_read_text(slug, "definition.json"))
    return _resolve(slug, raw)


def load_journey(slug: str) -> dict:
    """The journey's definition with every ``@file`` reference replaced by the file's text.

    Returns a fresh copy each time (the caller may edit it and store it as a draft).
    The metadata keys ``name``, ``description`` and ``version`` stay at the top level.
    """
    _check_slug(slug)
    return copy.deepcopy(_load(slug))


def list_journeys() -> list[dict]:
    """One summary per journey: ``slug``, ``name``, ``description``, ``trigger_event``, ``kind``, ``version``."""
    out = []
    for slug in JOURNEYS:
        definition = _load(slug)
        out.append(
            {
                "slug": slug,
                "name": definition["name"],
                "description": definition["description"],
                "trigger_event": definition["trigger"]["event"],
                "kind": definition.get("kind", "marketing"),
                "version": definition.get("version", 1),
            }
        )
    return out
