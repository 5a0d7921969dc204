"""The rule that fingerprints the Dashboard App's source (saleor_flows/dashboard/source_hash.py), on a real git repo."""

import hashlib
import subprocess

from saleor_flows.dashboard.source_hash import source_sha256, tracked_files


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_the_hash_covers_exactly_the_tracked_source_files_in_a_fixed_framing(tmp_path):
    source = tmp_path / "dashboard-extension"
    for path, text in {"package.json": "{}\n", "src/main.tsx": "render()\n", "src/é.ts": "x\n",
                       "node_modules/react/index.js": "lib\n", "dist/index.html": "<html>\n",
                       "src/dist/old.js": "old\n"}.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(text, encoding="utf-8")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-f", ".")
    (source / "src" / "untracked.ts").write_text("scratch\n")

    expected = hashlib.sha256()
    for path, data in [("package.json", b"{}\n"), ("src/main.tsx", b"render()\n"), ("src/\u00e9.ts", b"x\n")]:
        expected.update(path.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    assert tracked_files(source) == ["package.json", "src/main.tsx", "src/\u00e9.ts"]
    assert source_sha256(source) == expected.hexdigest()

    before = source_sha256(source)
    (source / "src" / "main.tsx").write_text("render(<App />)\n")
    assert source_sha256(source) != before  # a source edit changes it
    (source / "src" / "main.tsx").write_text("render()\n")
    (source / "node_modules" / "react" / "index.js").write_text("other\n")
    assert source_sha256(source) == before  # dependencies' files and build output do not
