"""The fingerprint of the Dashboard App's source, to prove the shipped bundle was built from it.

The build (``npm run build`` in ``dashboard-extension/``) writes
``saleor_flows/dashboard/static/build-info.json`` = ``{"source_sha256": …}``,
computed by its node script with exactly this rule; ``tests/`` recompute it
here from the files and compare, so a source change committed without a
rebuild fails the suite, and shop admins never need Node.

The rule: the files git tracks under ``dashboard-extension/``, except any
path with a ``node_modules`` or ``dist`` segment; paths relative to
``dashboard-extension/`` with "/" separators, sorted by their UTF-8 bytes;
SHA-256 over, for each file in that order, ``path`` (UTF-8), a NUL byte, the
file's size in bytes as decimal ASCII, a NUL byte, then the file's bytes.
(The sizes make the framing unambiguous.)

    python -m saleor_flows.dashboard.source_hash           # prints the hash
    python -m saleor_flows.dashboard.source_hash --check   # exit 1 if build-info.json is stale
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIR = REPO / "dashboard-extension"
BUILD_INFO = Path(__file__).resolve().parent / "static" / "build-info.json"
EXCLUDED_SEGMENTS = {"node_modules", "dist"}


def tracked_files(source_dir: Path) -> list[str]:
    """Paths git tracks under ``source_dir`` (relative, "/"-separated), without node_modules/ and dist/."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=source_dir, check=True, capture_output=True)
    paths = [p for p in listed.stdout.decode("utf-8").split("\0") if p]
    return sorted((p for p in paths if not EXCLUDED_SEGMENTS & set(p.split("/"))), key=lambda p: p.encode("utf-8"))


def source_sha256(source_dir: Path = SOURCE_DIR) -> str:
    digest = hashlib.sha256()
    for path in tracked_files(source_dir):
        data = (source_dir / path).read_bytes()
        digest.update(path.encode("utf-8") + b"\0" + str(len(data)).encode("ascii") + b"\0" + data)
    return digest.hexdigest()


def recorded_sha256(build_info: Path = BUILD_INFO) -> str:
    return json.loads(build_info.read_text(encoding="utf-8"))["source_sha256"]


def main(argv) -> int:
    actual = source_sha256()
    if "--check" not in argv:
        print(actual)
        return 0
    recorded = recorded_sha256()
    if recorded != actual:
        print(f"{BUILD_INFO} is stale: built from {recorded}, the source is {actual}. "
              "Run: cd dashboard-extension && npm ci && npm run build", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
