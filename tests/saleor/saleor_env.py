"""Is this run inside a Saleor environment? Shared by conftest.py and the test modules.

The tests in this directory run saleor-flows inside a real Saleor: Saleor's
models, GraphQL mutations, plugin manager and test fixtures. They need
Saleor installed, Saleor's test settings and Saleor's fixture modules, which
only a run rooted here loads (``-c tests/saleor/pytest-saleor.ini --rootdir tests/saleor``).
Anywhere else (the project's own ``make test``) every module here is skipped
with one of the reasons below, without importing Saleor.
"""

import importlib.util
import os

import pytest

NOT_INSTALLED = "Saleor is not installed (run tests/saleor in a Saleor environment, see README)"
RUN_COMMAND = "pytest -c tests/saleor/pytest-saleor.ini --rootdir tests/saleor tests/saleor"
NOT_SALEOR_SETTINGS = ("Saleor is installed but the Django settings are {module!r}, not Saleor's: "
                       f"run `{RUN_COMMAND}` (see tests/saleor/README.md)")
NOT_ROOT = ("Saleor's test fixtures are not loaded (this conftest is not the root conftest): "
            f"run `{RUN_COMMAND}` (see tests/saleor/README.md)")

# Set to True by conftest.py once it has loaded Saleor's fixture modules.
fixtures_loaded = False


def saleor_installed() -> bool:
    # find_spec, not import: importing `saleor` creates Saleor's Celery app (and
    # makes it the current one), which must not happen in a run that is not Saleor's.
    return importlib.util.find_spec("saleor") is not None


def settings_module() -> str:
    from django.conf import settings

    return getattr(settings, "SETTINGS_MODULE", None) or os.environ.get("DJANGO_SETTINGS_MODULE", "")


def saleor_settings_active() -> bool:
    """Django is configured with Saleor's settings (saleor.tests.settings or a shop's own module built on it)."""
    from django.conf import settings

    try:
        return settings.configured and "saleor.plugins" in settings.INSTALLED_APPS
    except Exception:  # settings that cannot even be read are not Saleor's
        return False


def skip_reason() -> str | None:
    """Why this run cannot use Saleor, or None if it can (fixtures aside)."""
    if not saleor_installed():
        return NOT_INSTALLED
    if not saleor_settings_active():
        return NOT_SALEOR_SETTINGS.format(module=settings_module())
    return None


def require_saleor():
    """Call at the top of each test module: skips the whole module unless this is a Saleor run."""
    reason = skip_reason()
    if reason is None and not fixtures_loaded:
        reason = NOT_ROOT
    if reason:
        pytest.skip(reason, allow_module_level=True)
