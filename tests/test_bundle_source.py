"""The shipped Dashboard bundle is built from the current source (issue 9: no Node for shop admins, CI proves it).

Enabled now that dashboard-extension/ and its build output (saleor_flows/dashboard/static/, with
build-info.json written by dashboard-extension/scripts/build-info.mjs) are on the branch.
"""

from saleor_flows.dashboard import bundle
from saleor_flows.dashboard.source_hash import BUILD_INFO, SOURCE_DIR, recorded_sha256, source_sha256


def test_the_shipped_bundle_was_built_from_the_current_source():
    assert SOURCE_DIR.is_dir() and (bundle.STATIC_DIR / "index.html").is_file() and BUILD_INFO.is_file()
    assert recorded_sha256() == source_sha256(), (
        "saleor_flows/dashboard/static/ was built from other sources than dashboard-extension/ has now: "
        "run `cd dashboard-extension && npm ci && npm run build` and commit the result.")


def test_every_asset_index_html_names_is_shipped():
    import re

    html = (bundle.STATIC_DIR / "index.html").read_text(encoding="utf-8")
    names = re.findall(r'(?:src|href)="\./assets/([^"]+)"', html)
    assert names, "index.html names no ./assets/ file: was the bundle built with Vite base './'?"
    for name in names:
        assert (bundle.STATIC_DIR / "assets" / name).is_file(), name
