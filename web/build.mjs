// Builds the console from src/ into dist/ (committed, embedded by web.go):
//   node build.mjs          write dist/
//   node build.mjs --check  build in memory and fail if dist/ differs (a stale committed bundle)
import { build } from "esbuild";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const src = join(root, "src");
const dist = join(root, "dist");
const check = process.argv.includes("--check");

const common = { bundle: true, minify: true, write: false, logLevel: "warning", legalComments: "eof", charset: "utf8" };
const [js, css] = await Promise.all([
  build({ ...common, entryPoints: [join(src, "main.js")], outfile: join(dist, "assets/app.js"), format: "esm", target: "es2020" }),
  build({ ...common, entryPoints: [join(src, "style.css")], outfile: join(dist, "assets/app.css"), target: "chrome100" }),
]);
const files = new Map();
for (const f of [...js.outputFiles, ...css.outputFiles]) files.set(relative(dist, f.path), Buffer.from(f.contents));
files.set("index.html", await readFile(join(src, "index.html")));
files.set("assets/favicon.svg", await readFile(join(src, "favicon.svg")));

async function listDist(dir = dist) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listDist(p)));
    else out.push(relative(dist, p));
  }
  return out;
}

if (check) {
  const problems = [];
  for (const [name, want] of files) {
    const have = await readFile(join(dist, name)).catch(() => null);
    if (!have) problems.push(`${name} is missing`);
    else if (!have.equals(want)) problems.push(`${name} differs from a fresh build`);
  }
  for (const name of await listDist()) if (!files.has(name)) problems.push(`${name} is not built from src/`);
  if (problems.length) {
    console.error(`web/dist is stale (run: cd web && npm ci && npm run build, then commit web/dist):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`web/dist matches a fresh build (${files.size} files)`);
} else {
  for (const [name, body] of files) {
    await mkdir(dirname(join(dist, name)), { recursive: true });
    await writeFile(join(dist, name), body);
  }
  for (const [name, body] of files) console.log(`  dist/${name}  ${(body.length / 1024).toFixed(1)} KiB`);
}
