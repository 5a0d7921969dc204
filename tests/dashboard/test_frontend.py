"""The Dashboard extension's own checks, run by `make test` through pytest (one command, one summary):
its vitest unit tests, and a real build that must reproduce the committed bundle byte for byte (the
Python hash test, tests/test_bundle_source.py, proves the source fingerprint without Node)."""

import filecmp
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "dashboard-extension"
SHIPPED = REPO / "saleor_flows" / "dashboard" / "static"


def npx(*args, timeout=180):
    node = shutil.which("npx")
    assert node, "Node is needed for the Dashboard extension's tests (scripts/ensure-dashboard-tools installs it)"
    return subprocess.run([node, *args], cwd=EXTENSION, capture_output=True, text=True, timeout=timeout)


def test_vitest_unit_tests_pass():
    run = npx("vitest", "run", "--reporter=dot")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout


def test_a_fresh_build_reproduces_the_shipped_bundle(tmp_path):
    typecheck = npx("tsc", "--noEmit")
    assert typecheck.returncode == 0, typecheck.stdout[-4000:]
    out = tmp_path / "static"
    build = npx("vite", "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "error")
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    built = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(SHIPPED).as_posix() for p in SHIPPED.rglob("*") if p.is_file()
                     and p.name != "build-info.json")
    assert built == shipped, "saleor_flows/dashboard/static/ is stale: run `npm run build` in dashboard-extension/"
    _, mismatch, errors = filecmp.cmpfiles(out, SHIPPED, built, shallow=False)
    assert mismatch == [] and errors == [], f"built differently from the shipped bundle: {mismatch + errors}"
