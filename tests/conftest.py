import pytest

from saleor_flows import flow_settings
from saleor_flows.testing import flows  # noqa: F401  (the FlowTester fixture)


@pytest.fixture(autouse=True)
def _fresh_flow_settings():
    """Flow settings are cached per process: a test never sees the values of one rolled back before it."""
    flow_settings.clear_cache()
    yield
    flow_settings.clear_cache()
