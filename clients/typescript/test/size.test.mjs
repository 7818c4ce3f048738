// The package's budget: no runtime dependencies, ≤ 8 kB minified and gzipped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

test("the bundle is at most 8 kB minified and gzipped", async () => {
  const out = await build({
    entryPoints: [new URL("../dist/index.js", import.meta.url).pathname],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "neutral",
    write: false,
  });
  const min = out.outputFiles[0].contents;
  const gz = gzipSync(min, { level: 9 }).length;
  console.log(`bundle: ${min.length} B minified, ${gz} B gzipped`);
  assert.ok(gz <= 8192, `${gz} B gzipped`);
});

test("no runtime dependencies", async () => {
  const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8"));
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}), []);
  assert.deepEqual(Object.keys(pkg.peerDependencies ?? {}), []);
  const js = await readFile(new URL("../dist/index.js", import.meta.url), "utf8");
  assert.deepEqual(js.match(/^import .* from ["'][^.].*$/gm) ?? [], [], "imports only its own files");
});
