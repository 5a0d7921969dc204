"""Root conftest of the Saleor integration suite (see README.md in this directory).

In a Saleor run (``pytest -c tests/saleor/pytest-saleor.ini --rootdir tests/saleor tests/saleor``
with Saleor installed) this file is the root conftest: it loads Saleor's own
fixture modules through ``pytest_plugins`` and adds the fixtures of this suite.

In any other run (the project's ``make test``: Saleor not installed, or our
``tests.settings``) it defines no ``pytest_plugins`` (pytest refuses them in a
non-root conftest) and imports nothing from Saleor: the test modules are not
even imported. Their tests are collected from the source and each is reported
as skipped with the reason from ``saleor_env`` (so a run of this directory alone
exits 0, where module-level skips would leave "no tests collected", exit 5).
"""

import ast
import logging
import sys
from pathlib import Path

import pytest

from . import saleor_env

FLOWS_PLUGIN = "saleor_flows.saleor_plugin.plugin.FlowsPlugin"


def _loaded_as_initial_conftest() -> bool:
    """True while pytest loads its initial (root) conftests, the only time ``pytest_plugins`` is allowed.

    pytest has no public way to ask this; it is its plugin manager's ``_configured``
    flag. When the flag cannot be found we answer True and let pytest decide.
    """
    frame = sys._getframe(1)
    while frame is not None:
        manager = frame.f_locals.get("self")
        if type(manager).__name__ == "PytestPluginManager" and hasattr(manager, "_configured"):
            return not manager._configured
        frame = frame.f_back
    return True


def _saleor_fixture_modules() -> list[str]:
    """Saleor's fixture modules (``saleor/**/tests/fixtures.py`` and ``…/tests/**/fixtures/``), found in its source.

    The same set Saleor's own root conftest lists; found rather than copied so
    that it follows the installed Saleor version.
    """
    import importlib.util

    spec = importlib.util.find_spec("saleor")
    root = Path(next(iter(spec.submodule_search_locations)))
    found = set()
    for path in root.rglob("fixtures.py"):
        found.add(path.with_suffix(""))
    for path in root.rglob("fixtures/__init__.py"):
        found.add(path.parent)
    modules = []
    for path in found:
        parts = path.relative_to(root.parent).parts
        if "tests" in parts and "e2e" not in parts:
            modules.append(".".join(parts))
    # saleor.tests.fixtures first, as in Saleor's conftest; the rest in a stable order.
    return sorted(modules, key=lambda name: (name != "saleor.tests.fixtures", name))


if saleor_env.skip_reason() is None and _loaded_as_initial_conftest():
    import django.test
    from django.conf import settings as django_settings
    from saleor.tests.utils import prepare_test_db_connections

    # Saleor reads through two aliases, the writer and a replica; in tests the replica
    # is the writer's own connection (one transaction), and every test case uses both.
    _databases = {django_settings.DATABASE_CONNECTION_DEFAULT_NAME, django_settings.DATABASE_CONNECTION_REPLICA_NAME}
    django.test.TransactionTestCase.databases = _databases
    django.test.TestCase.databases = _databases
    prepare_test_db_connections()

    pytest_plugins = _saleor_fixture_modules()
    saleor_env.fixtures_loaded = True


if saleor_env.fixtures_loaded:
    from decimal import Decimal

    from django.core import mail
    from django.utils import timezone

    from saleor_flows.engine.definition import create_flow, publish_flow
    from saleor_flows.journeys import load_journey
    from saleor_flows.testing import FlowTester

    from .saleor_graphql import PLUGIN_UPDATE, mutate

    @pytest.fixture
    def flows_plugin(request, settings, monkeypatch, staff_api_client, permission_manage_plugins):
        """The Flows plugin installed in Saleor and switched on by a staff user through ``pluginUpdate``.

        Saleor's test settings start with ``PLUGINS = []``. In a shop the plugin is
        in ``PLUGINS`` from start-up (Saleor adds it from its entry point), so our
        app registers the plugin's stored configuration as an engine settings
        source; here that is done after the fact, with the 30 s cache off.
        A global plugin (``CONFIGURATION_PER_CHANNEL = False``) is active when its
        PluginConfiguration row with ``channel=NULL`` says so: pluginUpdate writes it.
        """
        from saleor.plugins.models import PluginConfiguration

        from saleor_flows import conf
        from saleor_flows.saleor_plugin import config as plugin_config

        from saleor_flows import flow_settings

        settings.PLUGINS = [FLOWS_PLUGIN]
        # As in a shop: the App's flow settings first, then the plugin's configuration. Cached per process,
        # so cleared around each test (its rows are rolled back).
        monkeypatch.setattr(conf, "_sources", [flow_settings.stored_settings, plugin_config.stored_settings])
        flow_settings.clear_cache()
        request.addfinalizer(flow_settings.clear_cache)
        monkeypatch.setattr(plugin_config, "CACHE_SECONDS", 0)
        data = mutate(staff_api_client, "pluginUpdate", PLUGIN_UPDATE, {
            "id": "saleor.flows",
            "input": {"active": True, "configuration": [
                {"name": "sender_name", "value": "Flows Test Shop"},
                {"name": "sender_address", "value": "hello@shop.example.com"},
                {"name": "public_url", "value": "https://api.shop.example.com"},
                {"name": "abandoned_checkout_idle_minutes", "value": "60"},
                {"name": "checkout_url_template", "value": "https://shop.example.com/checkout?c={token}"},
            ]},
        }, permissions=[permission_manage_plugins])
        assert data["plugin"]["globalConfiguration"]["active"] is True
        return PluginConfiguration.objects.get(identifier="saleor.flows", channel=None)

    @pytest.fixture
    def flows(settings, flows_plugin):
        """The engine in inline mode with a movable clock that starts at the real now.

        Saleor stamps its objects with the real time (a checkout's ``last_change``
        becomes the abandoned-checkout timer's start), so the clock starts there
        and only moves forward. Email goes to Django's locmem outbox.
        """
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        settings.SALEOR_FLOWS = {
            "SHOP": {"name": "Flows Test Shop", "url": "https://shop.example.com", "logo_url": "",
                     "currency": "USD", "address": "1 Test Street", "support_email": "help@shop.example.com"},
        }
        mail.outbox = []
        tester = FlowTester(start=timezone.now())
        yield tester
        tester.close()

    @pytest.fixture
    def journey(flows):
        """``journey("welcome")``: publish one of the prebuilt journeys."""

        def publish(slug):
            definition = load_journey(slug)
            flow = create_flow(slug, definition, name=definition["name"])
            publish_flow(flow)
            return definition

        return publish

    @pytest.fixture
    def shop_variant(product, channel_USD):
        """A real variant of a real product with a distinctive name and price (stock: 10 in one warehouse)."""
        variant = product.variants.get()
        product.name = "Linen Summer Shirt"
        product.save(update_fields=["name"])
        listing = variant.channel_listings.get(channel=channel_USD)
        listing.price_amount = listing.discounted_price_amount = Decimal("24.90")
        listing.save(update_fields=["price_amount", "discounted_price_amount"])
        return variant

    @pytest.fixture
    def flows_log(caplog):
        caplog.set_level(logging.INFO, logger="saleor_flows")
        return caplog


if not saleor_env.fixtures_loaded:

    class SkippedSaleorModule(pytest.File):
        """A test module of this suite outside a Saleor run: its tests, read from the source, never imported."""

        def collect(self):
            reason = saleor_env.skip_reason() or saleor_env.NOT_ROOT
            for node in ast.parse(self.path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                    item = SkippedSaleorTest.from_parent(self, name=node.name, lineno=node.lineno)
                    item.add_marker(pytest.mark.skip(reason=reason))
                    yield item

    class SkippedSaleorTest(pytest.Item):
        def __init__(self, *, lineno: int, **kwargs):
            super().__init__(**kwargs)
            self.lineno = lineno

        def runtest(self):  # never reached: the skip mark stops it in setup
            raise AssertionError("a Saleor integration test ran outside a Saleor run")

        def reportinfo(self):
            return self.path, self.lineno - 1, self.name

    def pytest_pycollect_makemodule(module_path, parent):
        return SkippedSaleorModule.from_parent(parent, path=module_path)
