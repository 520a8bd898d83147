// End-to-end tests of the web console in a real browser: the real cygni-usage binary runs the
// demo (pinned with CYGNI_TEST_NOW, default the suite's 2026-11-18T09:30:00Z), Debian's chromium
// is driven by playwright-core, and every number the page shows is checked against the REST API.
// Screenshots go to web/test-results/, and to docs/screenshots/ with CYGNI_UPDATE_SCREENSHOTS=1.
//
//   cd web && npm ci && npm test        (CYGNI_BIN=path/to/cygni-usage to skip the go build)

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const web = dirname(dirname(fileURLToPath(import.meta.url)));
const root = dirname(web);
const results = join(web, "test-results");
const NOW = process.env.CYGNI_TEST_NOW || "2026-11-18T09:30:00Z"; // clocktest.Default
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let tmp, demo, base, tokens, browser, page;
const problems = []; // console errors, page errors, CSP violations: each one fails the suite
let expected401 = 0;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// startDemo runs `cygni-usage demo` and resolves with its stdout once the banner is printed.
function startDemo(bin, addr) {
  const none = join(tmp, "none");
  demo = spawn(bin, ["--data-dir", join(tmp, "data"), "--listen", addr, "demo"], {
    env: {
      PATH: process.env.PATH, HOME: tmp, CYGNI_TEST_NOW: NOW,
      AWS_CONFIG_FILE: none, AWS_SHARED_CREDENTIALS_FILE: none, AWS_EC2_METADATA_DISABLED: "true",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "", err = "";
  demo.stderr.on("data", (b) => { err += b; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner after 180 s; stderr:\n${err.slice(-4000)}`)), 180_000);
    demo.stdout.on("data", (b) => {
      out += b;
      if (out.includes("Press Ctrl-C to stop")) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    demo.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`demo exited with ${code}; stderr:\n${err.slice(-4000)}`));
    });
  });
}

function token(banner, label) {
  const m = new RegExp(`${label}:\\s+(cyg_\\S+)`).exec(banner);
  assert.ok(m, `the banner names the ${label}:\n${banner}`);
  return m[1];
}

async function apiJSON(path, tok = tokens.admin) {
  const res = await fetch(base + path, { headers: { Authorization: `Bearer ${tok}` } });
  assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
  return res.json();
}

async function screenshot(name, target = page, opts = {}, docs = true) {
  const file = join(results, name);
  await target.screenshot({ path: file, ...opts });
  if (docs && process.env.CYGNI_UPDATE_SCREENSHOTS === "1") {
    mkdirSync(join(root, "docs/screenshots"), { recursive: true });
    copyFileSync(file, join(root, "docs/screenshots", name));
  }
}

async function newPage(viewport = { width: 1280, height: 900 }) {
  const p = await browser.newPage({ viewport });
  p.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    // The one refused sign-in of the keyboard test is expected to log its 401.
    if (expected401 > 0 && /status of 401/.test(m.text())) { expected401--; return; }
    problems.push(`console ${m.type()}: ${m.text()}`);
  });
  p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return p;
}

async function signIn(p, tok) {
  await p.goto(base + "/");
  await p.waitForSelector("#token");
  await p.fill("#token", tok);
  await p.press("#token", "Enter");
  await p.waitForSelector("body[data-loaded=true]", { timeout: 60_000 });
}

// money renders a budget API number as the page does: two decimals.
const money = (v) => "$" + Number(v).toFixed(2);

// retry runs check up to three times, reloading the page in between: a collection cycle that
// lands between the page's request and the test's may change a number once.
async function retry(p, check) {
  for (let i = 0; ; i++) {
    try {
      return await check();
    } catch (e) {
      if (i === 2) throw e;
      await p.reload();
      await p.waitForSelector("body[data-loaded=true]", { timeout: 60_000 });
    }
  }
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "cygni-console-"));
  rmSync(results, { recursive: true, force: true });
  mkdirSync(results, { recursive: true });
  let bin = process.env.CYGNI_BIN;
  if (!bin) {
    bin = join(tmp, "cygni-usage");
    execFileSync("go", ["build", "-o", bin, "./cmd/cygni-usage"], { cwd: root, stdio: "inherit" });
  }
  const addr = `127.0.0.1:${await freePort()}`;
  base = `http://${addr}`;
  const banner = await startDemo(bin, addr);
  tokens = {
    admin: token(banner, "Admin token \\(Acme, operator\\)"),
    member: token(banner, "Member token \\(Acme\\)"),
    globex: token(banner, "Admin token \\(Globex\\)"),
  };
  assert.match(banner, new RegExp(`Console:\\s+${base}/`));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  page = await newPage();
});

after(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    demo.kill("SIGTERM");
    await new Promise((r) => { const t = setTimeout(() => { demo.kill("SIGKILL"); r(); }, 15_000); demo.once("exit", () => { clearTimeout(t); r(); }); });
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test("the page is served by the binary with a strict content security policy", async () => {
  const res = await fetch(base + "/");
  assert.equal(res.status, 200);
  const csp = res.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/, "no inline script");
  assert.doesNotMatch(html, /https?:\/\//, "nothing from another origin");
  assert.equal((await fetch(base + "/assets/app.js")).status, 200);
  // The API keeps its own answers beside the console.
  assert.equal((await fetch(base + "/api/nothing")).status, 404);
  assert.equal((await fetch(base + "/healthz")).status, 200);
});

test("sign in with the keyboard", async () => {
  await page.goto(base + "/");
  await page.waitForSelector("#token");
  await screenshot("console-signin.png");
  // A wrong token is refused with a message.
  expected401 = 1;
  await page.fill("#token", "cyg_0000000000000000_not-a-token");
  await page.press("#token", "Enter");
  await page.waitForSelector("#signin-error:not(:empty)");
  assert.match(await page.textContent("#signin-error"), /not valid/);
  // The token field has the focus; the skip link is the one stop before it; Enter signs in.
  await page.goto(base + "/");
  await page.waitForSelector("#token:focus");
  await page.keyboard.press("Shift+Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "token");
  await page.keyboard.type(tokens.admin);
  await page.keyboard.press("Enter");
  await page.waitForSelector("body[data-loaded=true]", { timeout: 60_000 });
  assert.equal(await page.textContent("#who-text"), "Acme · admin · operator");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("cygni.token")), tokens.admin);
});

test("budgets: month to date against the budget, as the API says", async () => {
  const limits = await apiJSON("/api/usage/limits");
  assert.deepEqual(limits.projects.map((p) => p.projectId), ["proj_001", "proj_002"]);
  await retry(page, async () => {
    for (const p of limits.projects) {
      const b = await apiJSON(`/api/projects/${p.projectId}/budget`);
      const card = page.locator(`article[data-project=${p.projectId}]`);
      for (const f of ["used", "limit", "remaining", "forecast"]) {
        assert.equal(await card.locator(`dd[data-field=${f}]`).textContent(), money(b[f]), `${p.projectId} ${f}`);
      }
      assert.match(await card.getAttribute("class"), new RegExp(`status-${b.status}`));
      assert.match(await card.locator(".status-line").textContent(), new RegExp(`${b.percentUsed} % of the budget used`));
    }
  });
  // The demo's seeded statuses: proj_002 over its budget, proj_001 at or about to cross 80 %.
  const b1 = await apiJSON("/api/projects/proj_001/budget");
  const b2 = await apiJSON("/api/projects/proj_002/budget");
  assert.equal(b2.status, "exceeded");
  assert.ok(b1.percentUsed >= 75 && b1.status !== "exceeded", `proj_001 at ${b1.percentUsed} %`);
  assert.equal(await page.locator("article.budget canvas").count(), 2);
});

// The numbers table of a chart: one row per bucket, one column per deployment, then the total.
async function chartTable(metric) {
  const fig = page.locator(`figure[data-metric=${metric}]`);
  await fig.locator("summary").click();
  const rows = await fig.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  const head = await fig.locator("thead th").evaluateAll((ths) => ths.map((th) => th.textContent));
  await fig.locator("summary").click();
  return { head, rows };
}

async function checkCharts(params) {
  const a = await apiJSON("/api/usage/analytics?" + new URLSearchParams({ ...params, deployments: "true" }));
  const deployments = a.projects.flatMap((p) => p.deployments.map((d) => ({ p, d })));
  assert.equal(await page.locator("#charts figure").count(), 6, "one chart per metric");
  for (const [metric, get] of [["cost", (b) => b.cost.total], ["cpuHours", (b) => b.cpuHours], ["requests", (b) => b.requests], ["egressGB", (b) => b.egressGB]]) {
    const { head, rows } = await chartTable(metric);
    assert.deepEqual(head.slice(1, -1), deployments.map(({ p, d }) => (params.projectId ? d.deployment : `${p.projectId} · ${d.deployment}`)));
    assert.equal(rows.length, a.data.length, `${metric}: one row per bucket`);
    a.data.forEach((b, i) => {
      assert.equal(rows[i].at(-1), String(get(b)), `${metric} total of bucket ${b.period}`);
      deployments.forEach(({ d }, j) => assert.equal(rows[i][j + 1], String(get(d.data[i])), `${metric} ${d.deployment} ${b.period}`));
    });
  }
  assert.match(await page.textContent("#usage-total"), new RegExp(`\\$${a.totals.cost.total.replace(".", "\\.")}`));
  return a;
}

test("usage charts: one per metric, stacked by deployment, in the chosen time zone", async () => {
  await page.selectOption("#u-tz", "UTC");
  await page.click("#usage-form button[type=submit]");
  await page.waitForLoadState("networkidle");
  const from = await page.inputValue("#u-from"), to = await page.inputValue("#u-to");
  const end = new Date(to + "T00:00:00Z"); end.setUTCDate(end.getUTCDate() + 1);
  await retry(page, () => checkCharts({ startDate: from, endDate: end.toISOString().slice(0, 10), groupBy: "day", tz: "UTC" }));
  await screenshot("console-usage.png", page.locator("#usage"));

  // Hours of one project in a half-hour time zone.
  await page.selectOption("#u-project", "proj_001");
  await page.selectOption("#u-tz", "Asia/Kolkata");
  await page.selectOption("#u-group", "hour"); // resets the range and reloads
  await page.click("#usage-form button[type=submit]");
  await page.waitForLoadState("networkidle");
  const hf = await page.inputValue("#u-from"), ht = await page.inputValue("#u-to");
  const hend = new Date(ht + "T00:00:00Z"); hend.setUTCDate(hend.getUTCDate() + 1);
  const a = await checkCharts({ projectId: "proj_001", startDate: hf, endDate: hend.toISOString().slice(0, 10), groupBy: "hour", tz: "Asia/Kolkata" });
  assert.match(a.data[0].period, /\+05:30$/);
  assert.deepEqual(a.projects[0].deployments.map((d) => d.deployment), ["web", "worker"]);
});

test("notifications: the seeded budget alerts show, and one is marked read with the keyboard", async () => {
  let n;
  for (let i = 0; i < 60; i++) { // the first rule evaluations follow the backfill within seconds
    n = await apiJSON("/api/usage/notifications?limit=50");
    if (n.notifications.some((x) => x.projectId === "proj_002" && x.type === "budget_exceeded")) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.ok(n.notifications.some((x) => x.projectId === "proj_002" && x.type === "budget_exceeded"), JSON.stringify(n));
  await page.reload();
  await page.waitForSelector("body[data-loaded=true]");
  const first = page.locator("#notification-list li.notification:not(.read)").first();
  const id = await first.getAttribute("data-id");
  const unread = (await apiJSON("/api/usage/notifications?limit=50")).unreadCount;
  assert.equal(await page.textContent("#unread"), String(unread));
  const shown = (await apiJSON("/api/usage/notifications?limit=50")).notifications.find((x) => x.id === id);
  assert.equal(await first.locator(".n-msg").textContent(), shown.message);
  await screenshot("console-notifications.png", page.locator("#notifications"));
  await first.locator("button.mark-read").focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector(`li[data-id=${id}].read`);
  const after = await apiJSON("/api/usage/notifications?limit=50");
  const marked = after.notifications.find((x) => x.id === id);
  assert.equal(marked.read, true);
  assert.ok(marked.readAt);
  assert.equal(after.unreadCount, unread - 1);
  assert.equal(await page.textContent("#unread"), String(unread - 1) || "");
});

test("recommendations and unmapped usage, as the API lists them", async () => {
  const r = await apiJSON("/api/usage/recommendations");
  assert.ok(r.recommendations.some((x) => x.projectId === "proj_001" && x.deployment === "web"), "the demo's oversized deployment");
  const rows = await page.locator("#recommendation-table tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  assert.deepEqual(rows.map((row) => [row[0], row[5]]), r.recommendations.map((x) => [`${x.projectId} · ${x.deployment}`, `$${x.monthlySaving}`]));
  const u = await apiJSON("/api/usage/unmapped");
  const urows = await page.locator("#unmapped-table tbody tr th").allTextContents();
  assert.deepEqual(urows, u.unmapped.map((x) => x.deployment));
  assert.ok(urows.includes("legacy-untagged-1"));
});

test("export: the buttons download exactly what the API exports", async () => {
  const from = await page.inputValue("#e-from"), to = await page.inputValue("#e-to");
  const end = new Date(to + "T00:00:00Z"); end.setUTCDate(end.getUTCDate() + 1);
  for (const format of ["csv", "json"]) {
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click(`#export-form button[value=${format}]`),
    ]);
    const got = readFileSync(await download.path(), "utf8");
    const res = await fetch(`${base}/api/usage/export?` + new URLSearchParams({ startDate: from, endDate: end.toISOString().slice(0, 10), format }),
      { headers: { Authorization: `Bearer ${tokens.admin}` } });
    assert.equal(download.suggestedFilename(), /filename="([^"]+)"/.exec(res.headers.get("content-disposition"))[1]);
    assert.equal(got, await res.text(), `${format} download`);
    assert.ok(got.length > 1000, `${format} has rows`);
  }
});

test("accessible: no axe-core violations (WCAG 2.1 AA), and usable at a phone's width", async () => {
  const axe = readFileSync(join(web, "node_modules/axe-core/axe.min.js"), "utf8");
  const check = async (p, what) => {
    await p.evaluate(axe);
    const res = await p.evaluate(async () => {
      for (const d of document.querySelectorAll("details")) d.open = true;
      const r = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
      for (const d of document.querySelectorAll("details")) d.open = false;
      return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`);
    });
    assert.deepEqual(res, [], `${what}: axe violations`);
  };
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot("console.png", page);
  await screenshot("console-full.png", page, { fullPage: true }, false);
  await check(page, "desktop");

  const phone = await newPage({ width: 390, height: 844 });
  await signIn(phone, tokens.admin);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px at 390 px`);
  await phone.evaluate(() => window.scrollTo(0, 0));
  await screenshot("console-phone.png", phone);
  await check(phone, "phone");
  await phone.close();

  // The sign-in screen too.
  const fresh = await newPage();
  await fresh.goto(base + "/");
  await fresh.waitForSelector("#token");
  await check(fresh, "sign-in");
  await fresh.close();
});

test("a member sees the numbers but no budget form and no operator section", async () => {
  const p = await newPage();
  await signIn(p, tokens.member);
  assert.equal(await p.textContent("#who-text"), "Acme · member");
  assert.equal(await p.locator(".limit-form").count(), 0);
  assert.equal(await p.isVisible("#unmapped"), false);
  assert.equal(await p.isVisible("#nav-unmapped"), false);
  assert.equal(await p.locator("article.budget").count(), 2);
  await p.click("#signout");
  await p.waitForSelector("#token");
  assert.equal(await p.evaluate(() => sessionStorage.getItem("cygni.token")), null);
  await p.close();
  // Another team sees only its own projects.
  const g = await newPage();
  await signIn(g, tokens.globex);
  assert.deepEqual(await g.locator("article.budget").evaluateAll((as) => as.map((a) => a.dataset.project)), ["proj_003", "proj_004"]);
  await g.close();
});

test("an admin changes a budget", async () => {
  const before = await apiJSON("/api/projects/proj_002/budget");
  const card = page.locator("article[data-project=proj_002]");
  await card.locator("input").fill("5000");
  await card.locator("button[type=submit]").click();
  await page.waitForSelector("article[data-project=proj_002] dd[data-field=limit]:text('$5000.00')");
  const b = await apiJSON("/api/projects/proj_002/budget");
  assert.equal(b.limit, 5000);
  assert.equal(b.status, "ok");
  assert.match(await page.locator("article[data-project=proj_002]").getAttribute("class"), /status-ok/);
  // A malformed amount is refused before it reaches the API.
  await page.locator("article[data-project=proj_002] input").fill("12.345");
  await page.locator("article[data-project=proj_002] button[type=submit]").click();
  await page.waitForSelector("article[data-project=proj_002] .form-msg:text('at most two decimals')");
  assert.equal((await apiJSON("/api/projects/proj_002/budget")).limit, 5000);
  // Restore the seeded budget.
  await page.locator("article[data-project=proj_002] input").fill(before.limit.toFixed(2));
  await page.locator("article[data-project=proj_002] button[type=submit]").click();
  await page.waitForSelector(`article[data-project=proj_002] dd[data-field=limit]:text('${money(before.limit)}')`);
});

test("no console errors, page errors or CSP violations", () => {
  assert.deepEqual(problems, []);
});
