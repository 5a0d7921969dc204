// Writes saleor_flows/dashboard/static/build-info.json = {"source_sha256": …}: the fingerprint of the
// source the bundle was built from (same rule as saleor_flows/dashboard/source_hash.py, which the
// Python tests recompute). With --check, exits 1 when the committed build-info.json is stale.
//
// Rule: files git tracks under dashboard-extension/ except any path with a node_modules or dist
// segment; "/"-separated relative paths sorted by UTF-8 bytes; SHA-256 over, per file,
// path NUL size NUL bytes.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SOURCE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD_INFO = resolve(SOURCE_DIR, "../saleor_flows/dashboard/static/build-info.json");
const EXCLUDED = new Set(["node_modules", "dist"]);

export function trackedFiles(sourceDir = SOURCE_DIR) {
  const listed = execFileSync("git", ["ls-files", "-z", "--", "."], { cwd: sourceDir });
  return listed
    .toString("utf8")
    .split("\0")
    .filter((p) => p && !p.split("/").some((segment) => EXCLUDED.has(segment)))
    .sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}

export function sourceSha256(sourceDir = SOURCE_DIR) {
  const digest = createHash("sha256");
  for (const path of trackedFiles(sourceDir)) {
    const data = readFileSync(join(sourceDir, path));
    digest.update(Buffer.concat([Buffer.from(path, "utf8"), Buffer.from([0]),
      Buffer.from(String(data.length), "ascii"), Buffer.from([0]), data]));
  }
  return digest.digest("hex");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const actual = sourceSha256();
  if (process.argv.includes("--check")) {
    const recorded = JSON.parse(readFileSync(BUILD_INFO, "utf8")).source_sha256;
    if (recorded !== actual) {
      console.error(`${BUILD_INFO} is stale (built from ${recorded}, source is ${actual}): run npm run build`);
      process.exit(1);
    }
    console.log("build-info.json matches the source");
  } else {
    mkdirSync(dirname(BUILD_INFO), { recursive: true });
    writeFileSync(BUILD_INFO, JSON.stringify({ source_sha256: actual }, null, 2) + "\n");
    console.log(`wrote ${BUILD_INFO}: ${actual}`);
  }
}
