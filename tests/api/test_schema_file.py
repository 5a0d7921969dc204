"""The committed schema file is the schema: a change to the API shows up in review."""

import subprocess
import sys
from pathlib import Path

from saleor_flows.api.schema import SCHEMA_FILE, printed

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_code():
    assert SCHEMA_FILE.read_text() == printed(), (
        "saleor_flows/api/schema.graphql is out of date: run `python -m saleor_flows.api` and commit it")


def test_schema_speaks_saleor_conventions():
    sdl = printed()
    assert "type FlowError {\n  field: String\n  code: FlowErrorCode!\n  message: String!\n}" in sdl
    assert "type PageInfo {\n  hasNextPage: Boolean!" in sdl
    assert "flows(filter: FlowFilterInput, first: Int, after: String): FlowCountableConnection" in sdl


def test_the_check_command_fails_on_a_stale_file(tmp_path, monkeypatch):
    """``python -m saleor_flows.api --check`` is what CI or a pre-commit hook runs."""
    ok = subprocess.run([sys.executable, "-m", "saleor_flows.api", "--check"], cwd=ROOT, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    original = SCHEMA_FILE.read_text()
    try:
        SCHEMA_FILE.write_text(original.replace("type FlowError", "type FlowErr"))
        stale = subprocess.run([sys.executable, "-m", "saleor_flows.api", "--check"], cwd=ROOT, capture_output=True,
                               text=True)
        assert stale.returncode == 1 and "out of date" in stale.stderr
    finally:
        SCHEMA_FILE.write_text(original)
