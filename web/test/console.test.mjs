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
// expected counts the refused requests a test makes on purpose, by status: the browser logs
// each as a console error, which is then not a problem.
const expected = new Map();
const expect = (status, n) => expected.set(status, (expected.get(status) || 0) + n);

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
    const code = Number((/status of (\d{3})/.exec(m.text()) || [])[1]);
    if (expected.get(code) > 0) { expected.set(code, expected.get(code) - 1); return; }
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

// axeCheck fails on any axe-core WCAG 2.1 A/AA violation of the page (details opened).
async function axeCheck(p, what) {
  await p.evaluate(readFileSync(join(web, "node_modules/axe-core/axe.min.js"), "utf8"));
  const res = await p.evaluate(async () => {
    for (const d of document.querySelectorAll("details")) d.open = true;
    const r = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
    for (const d of document.querySelectorAll("details")) d.open = false;
    return r.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`);
  });
  assert.deepEqual(res, [], `${what}: axe violations`);
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
  expect(401, 1);
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
  const check = axeCheck;
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

// ---- alerts, team and daily budgets, mutes, audit (issue #20) ----

// api calls the REST API and answers the status, the body's text and its JSON.
async function api(method, path, tok = tokens.admin, body) {
  const res = await fetch(base + path, {
    method, headers: { Authorization: `Bearer ${tok}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) };
}

// field is the text the API wrote for a top-level number or null ("530.80", not 530.8).
function field(text, name) {
  const m = new RegExp(`"${name}":(null|-?[0-9.]+)`).exec(text);
  assert.ok(m, `${name} in ${text}`);
  return m[1];
}
const moneyText = (t) => (t === "null" ? "none" : "$" + (t.includes(".") ? t.split(".")[0] + "." + (t.split(".")[1] + "00").slice(0, 2) : t + ".00"));

// The rows of a thresholds table as the page shows them, and as the API's list says they should be.
const thresholdRows = (panel) => panel.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].slice(0, 3).map((c) => c.textContent)));
function wantRows(list) {
  const who = (r) => [r.billingContact && "billing contact", r.admins && "every admin", ...r.emails, r.webhook && "webhook"].filter(Boolean).join(", ") || "nobody";
  return list.map((x) => [`${x.percent} %`, { actual: "cost so far", forecast: "month-end forecast" }[x.basis], who(x.recipients)]);
}

test("alerts: an admin adds a 50 % forecast threshold, the API returns it and the audit names the actor", async () => {
  await page.reload();
  await page.waitForSelector("body[data-loaded=true]", { timeout: 60_000 });
  const who = await apiJSON("/api/whoami");
  assert.equal(who.member, "ada@acme.example");
  const panel = page.locator('.thresholds[data-scope="project:proj_001"]');
  const before = await apiJSON("/api/projects/proj_001/thresholds");
  assert.equal(before.source, "default");
  assert.equal(await panel.locator(".source").getAttribute("data-source"), "default");
  assert.deepEqual(await thresholdRows(panel), wantRows(before.thresholds));
  assert.deepEqual(await panel.locator("tbody tr .fixed-tag").allTextContents(), ["fixed, always on", "fixed, always on"]);
  assert.equal(await panel.locator("tbody tr button.edit-threshold").count(), 2, "the fixed ones can be edited (their recipients)");
  assert.equal(await panel.locator("tbody tr button.remove-threshold").count(), 0, "but not removed");

  // Add 50 % of the month-end forecast, to the billing contact and an extra address.
  await page.fill("#project-proj_001-pct", "50");
  await page.selectOption("#project-proj_001-basis", "forecast");
  await page.uncheck("#project-proj_001-webhook");
  await page.fill("#project-proj_001-emails", "cfo@acme.example");
  await page.click('.thresholds[data-scope="project:proj_001"] .threshold-form button[type=submit]');
  await page.waitForSelector('.thresholds[data-scope="project:proj_001"] .source[data-source=project]');
  const after = await api("GET", "/api/projects/proj_001/thresholds");
  assert.equal(after.text, '{"teamId":"team_acme","projectId":"proj_001","source":"project","thresholds":[' +
    '{"percent":80,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":true},' +
    '{"percent":100,"basis":"actual","recipients":{"billingContact":false,"admins":true,"emails":[],"webhook":true},"fixed":true},' +
    '{"percent":50,"basis":"forecast","recipients":{"billingContact":true,"admins":false,"emails":["cfo@acme.example"],"webhook":false},"fixed":false}]}\n');
  assert.deepEqual(await thresholdRows(panel), wantRows(after.json.thresholds));
  assert.equal(await panel.locator(".form-msg").textContent(), "Added a 50 % forecast threshold.");
  // Another project and the team default are unchanged.
  assert.equal((await apiJSON("/api/projects/proj_002/thresholds")).source, "default");
  assert.equal((await apiJSON("/api/teams/team_acme/thresholds")).source, "default");

  // The audit view lists the change first, with the admin's member and token.
  const audit = await apiJSON("/api/audit?limit=1");
  const ev = audit.events[0];
  assert.equal(ev.action, "thresholds");
  assert.equal(ev.target, "proj_001");
  assert.equal(ev.actorMember, "ada@acme.example");
  assert.equal(ev.actorToken, who.tokenId);
  await page.waitForFunction((n) => document.querySelector("#audit-table tbody tr td:nth-child(6) code")?.textContent === n, ev.new);
  const row = await page.locator("#audit-table tbody tr").first().evaluate((tr) => [...tr.children].map((c) => c.textContent));
  assert.deepEqual(row, [ev.at.replace("T", " ").replace("Z", ""), `ada@acme.example · ${who.tokenId}`, "thresholds", "proj_001", ev.old || "—", ev.new]);
  assert.match(ev.new, /"percent":"50","basis":"forecast"/);
  await screenshot("console-alerts.png", page.locator("#alerts"));
  await screenshot("console-audit.png", page.locator("#audit"), {}, false);
  await axeCheck(page, "admin, a project with a list of its own");

  // Bad input: what is not a number is refused before it is sent...
  const formMsg = (scope) => page.locator(`.thresholds[data-scope="${scope}"] .form-msg`);
  for (const v of ["fifty", "12,5", "-5"]) {
    await page.fill("#project-proj_001-pct", v);
    await page.click('.thresholds[data-scope="project:proj_001"] .threshold-form button[type=submit]');
    await page.waitForFunction(() => /percentage as a number/.test(document.querySelector('.thresholds[data-scope="project:proj_001"] .form-msg').textContent));
    await formMsg("project:proj_001").evaluate((m) => { m.textContent = ""; });
  }
  // ...a number out of bounds is the API's to judge, and its message is shown word for word.
  for (const [v, want] of [["1001", "thresholds[3].percent: 1001 is above the maximum of 1000"], ["0", "thresholds[3].percent: 0 must be positive"],
    ["12.345", "thresholds[3].percent: 12.345 has more than 2 decimals"], ["50.0000000000000001", "thresholds[3].percent: 50.0000000000000001 has more than 2 decimals"]]) {
    expect(400, 1);
    await page.fill("#project-proj_001-pct", v);
    await page.click('.thresholds[data-scope="project:proj_001"] .threshold-form button[type=submit]');
    await page.waitForFunction((m) => document.querySelector('.thresholds[data-scope="project:proj_001"] .form-msg').textContent === m, want);
  }
  assert.equal((await api("GET", "/api/projects/proj_001/thresholds")).text, after.text, "nothing was changed");
  await page.fill("#project-proj_001-pct", "60");
  await page.fill("#project-proj_001-emails", "not-an-address");
  await page.click('.thresholds[data-scope="project:proj_001"] .threshold-form button[type=submit]');
  await page.waitForSelector('.thresholds[data-scope="project:proj_001"] .form-msg:text("not a plain e-mail address")');
  assert.equal((await api("GET", "/api/projects/proj_001/thresholds")).text, after.text, "nothing was sent");
  // ...and what only the API knows comes back as its message, word for word.
  await page.fill("#project-proj_001-emails", "");
  await page.fill("#project-proj_001-pct", "80");
  await page.selectOption("#project-proj_001-basis", "actual");
  const refused = await api("PUT", "/api/projects/proj_001/thresholds", tokens.admin, {
    thresholds: [...after.json.thresholds.map((x) => ({ percent: x.percent, basis: x.basis, recipients: x.recipients })),
      { percent: 80, basis: "actual", recipients: { billingContact: true, admins: false, emails: [], webhook: true } }],
  });
  assert.equal(refused.status, 400);
  expect(400, 1);
  await page.click('.thresholds[data-scope="project:proj_001"] .threshold-form button[type=submit]');
  await page.waitForFunction((m) => document.querySelector('.thresholds[data-scope="project:proj_001"] .form-msg').textContent === m, refused.json.error.message);
  assert.equal(refused.json.error.message, "thresholds[3].percent: 80 % on the actual cost is listed twice");
  assert.equal((await api("GET", "/api/projects/proj_001/thresholds")).text, after.text);

  // Remove it again, then go back to the team default (PUT null).
  await panel.locator("button.remove-threshold").click();
  await page.waitForFunction(() => document.querySelectorAll('.thresholds[data-scope="project:proj_001"] tbody tr').length === 2);
  const removed = await apiJSON("/api/projects/proj_001/thresholds");
  assert.equal(removed.source, "project");
  assert.deepEqual(removed.thresholds.map((x) => x.percent), [80, 100]);
  await panel.locator("button.inherit").click();
  await page.waitForSelector('.thresholds[data-scope="project:proj_001"] .source[data-source=default]');
  assert.equal((await apiJSON("/api/projects/proj_001/thresholds")).source, "default");
  assert.equal(await panel.locator("button.inherit").count(), 0);
});

test("alerts: the team default thresholds and the team budget, as the API says", async () => {
  const team = page.locator('.thresholds[data-scope="team:team_acme"]');
  await page.fill("#team-team_acme-pct", "75.5");
  await page.click('.thresholds[data-scope="team:team_acme"] .threshold-form button[type=submit]');
  await page.waitForSelector('.thresholds[data-scope="team:team_acme"] .source[data-source=team]');
  const t = await apiJSON("/api/teams/team_acme/thresholds");
  assert.equal(t.source, "team");
  assert.deepEqual(t.thresholds.map((x) => [x.percent, x.basis, x.fixed]), [[75.5, "actual", false], [80, "actual", true], [100, "actual", true]]);
  assert.deepEqual(await thresholdRows(team), wantRows(t.thresholds));
  // The projects without a list of their own follow it at once.
  await page.waitForSelector('.thresholds[data-scope="project:proj_002"] .source[data-source=team]');
  assert.deepEqual(await thresholdRows(page.locator('.thresholds[data-scope="project:proj_002"]')), wantRows(t.thresholds));
  assert.equal((await apiJSON("/api/projects/proj_002/thresholds")).source, "team");

  // The team budget: none yet, then 2000.50, figures exactly as the API wrote them.
  const card = page.locator("#team-card");
  const none = await api("GET", "/api/teams/team_acme/budget");
  assert.equal(none.json.status, "none");
  assert.equal(await card.locator("dd[data-field=team-limit]").textContent(), "none");
  assert.equal(await card.locator("dd[data-field=team-used]").textContent(), moneyText(field(none.text, "used")));
  await page.fill("#team-limit", "2000.50");
  await card.locator(".amount-form button[type=submit]").click();
  await page.waitForSelector("#team-card dd[data-field=team-limit]:text('$2000.50')");
  await retry(page, async () => {
    const b = await api("GET", "/api/teams/team_acme/budget");
    assert.equal(field(b.text, "limit"), "2000.50");
    for (const f of ["used", "remaining", "forecast"]) {
      assert.equal(await card.locator(`dd[data-field=team-${f}]`).textContent(), moneyText(field(b.text, f)), f);
    }
    assert.match(await card.locator(".status-line").textContent(), new RegExp(` ${field(b.text, "percentUsed").replace(".", "\\.")} % of the team budget used`));
    assert.equal(await card.locator(".team-budget").getAttribute("class"), `team-budget status-${b.json.status}`);
  });
  // A malformed amount is refused before it is sent; removing it is a PUT null.
  await page.fill("#team-limit", "1,000");
  await card.locator(".amount-form button[type=submit]").click();
  await page.waitForSelector("#team-card .form-msg:text('at most two decimals')");
  await card.locator(".amount-form button.secondary").click();
  await page.waitForSelector("#team-card dd[data-field=team-limit]:text('none')");
  assert.equal((await apiJSON("/api/teams/team_acme/budget")).limit, null);

  // Restore the default thresholds of the team.
  await team.locator("button.inherit").click();
  await page.waitForSelector('.thresholds[data-scope="team:team_acme"] .source[data-source=default]');
  await page.waitForSelector('.thresholds[data-scope="project:proj_002"] .source[data-source=default]');
  assert.equal((await apiJSON("/api/teams/team_acme/thresholds")).source, "default");
});

test("alerts: a project's daily budget in the team's time zone, as the API says", async () => {
  const card = page.locator("article[data-alerts-project=proj_001]");
  const none = await api("GET", "/api/projects/proj_001/daily-budget");
  assert.equal(none.json.dailyLimit, null);
  assert.equal(await card.locator("[data-field=daily-status]").textContent(), "No daily budget.");
  await page.fill("#daily-proj_001", "5");
  await card.locator(".daily .amount-form button[type=submit]").click();
  await page.waitForSelector("article[data-alerts-project=proj_001] dd[data-field=daily-limit]:text('$5.00')");
  await retry(page, async () => {
    const d = await api("GET", "/api/projects/proj_001/daily-budget");
    assert.equal(field(d.text, "dailyLimit"), "5.00");
    assert.equal(await card.locator("dd[data-field=daily-used]").textContent(), moneyText(field(d.text, "used")));
    assert.equal(await card.locator("[data-field=daily-status]").textContent(),
      `${d.json.exceeded ? "Exceeded today" : "Within today's budget"} — ${field(d.text, "percentUsed")} % used`);
    assert.match(await card.locator(".daily").textContent(), new RegExp(`team's time zone \\(${d.json.timeZone}\\): ${d.json.dayStart.replace("T", " ")} to`));
  });
  await card.locator(".daily .amount-form button.secondary").click();
  await page.waitForSelector("article[data-alerts-project=proj_001] [data-field=daily-status]:text('No daily budget.')");
  assert.equal((await apiJSON("/api/projects/proj_001/daily-budget")).dailyLimit, null);
});

test("alerts: a member sees the thresholds read-only and toggles their own mute", async () => {
  const p = await newPage();
  await signIn(p, tokens.member);
  for (const id of ["proj_001", "proj_002"]) {
    const panel = p.locator(`.thresholds[data-scope="project:${id}"]`);
    assert.deepEqual(await thresholdRows(panel), wantRows((await apiJSON(`/api/projects/${id}/thresholds`, tokens.member)).thresholds));
    assert.match(await panel.textContent(), /Only a team admin can change the thresholds\./);
  }
  for (const sel of [".threshold-form", "button.remove-threshold", "button.inherit", ".amount-form", "#team-limit"]) {
    assert.equal(await p.locator(sel).count(), 0, `a member has no ${sel}`);
  }
  assert.equal(await p.isVisible("#audit"), false);
  assert.equal(await p.isVisible("#nav-audit"), false);
  // The API refuses a member's change (403) and the audit (403) anyway.
  const put = await api("PUT", "/api/projects/proj_001/thresholds", tokens.member, { thresholds: null });
  assert.equal(put.status, 403);
  assert.equal(put.json.error.message, "changing thresholds needs the admin role; the token has member");
  assert.equal((await api("GET", "/api/audit", tokens.member)).status, 403);

  // The member's own mute of proj_001's warnings.
  const toggle = p.locator("#mute-proj_001");
  assert.equal(await toggle.isChecked(), false);
  assert.deepEqual(await apiJSON("/api/projects/proj_001/mute", tokens.member), { projectId: "proj_001", member: "max@acme.example", muted: false });
  assert.match(await p.locator("article[data-alerts-project=proj_001] .mute").textContent(), /Exceeded alerts to admins cannot be muted/);
  await toggle.focus();
  await p.keyboard.press("Space");
  await p.waitForSelector("article[data-alerts-project=proj_001] .mute .form-msg:text('muted for max@acme.example')");
  assert.deepEqual(await apiJSON("/api/projects/proj_001/mute", tokens.member), { projectId: "proj_001", member: "max@acme.example", muted: true });
  assert.equal((await apiJSON("/api/projects/proj_002/mute", tokens.member)).muted, false, "only proj_001");
  await p.reload();
  await p.waitForSelector("body[data-loaded=true]", { timeout: 60_000 });
  assert.equal(await p.locator("#mute-proj_001").isChecked(), true);
  await screenshot("console-alerts-member.png", p.locator("#alerts"), {}, false);
  await axeCheck(p, "member");
  await p.locator("#mute-proj_001").click();
  await p.waitForSelector("article[data-alerts-project=proj_001] .mute .form-msg:text('go to max@acme.example again')");
  assert.equal((await apiJSON("/api/projects/proj_001/mute", tokens.member)).muted, false);
  // Both changes are in the audit trail under the member.
  const a = await apiJSON("/api/audit?limit=2&action=notification_mute");
  assert.deepEqual(a.events.map((e) => [e.actorMember, e.target, e.old, e.new]),
    [["max@acme.example", "proj_001 max@acme.example", "muted", "unmuted"], ["max@acme.example", "proj_001 max@acme.example", "unmuted", "muted"]]);
  await p.close();
});

// The list the audit trail stores (old and new are this text): the API's entries without
// "fixed", each percent as text.
const storedList = (list) => JSON.stringify(list.map((x) => ({ percent: String(x.percent), basis: x.basis, recipients: x.recipients })));
const formMsgIs = (p, scope, text) => p.waitForFunction(([s, t]) => document.querySelector(`.thresholds[data-scope="${s}"] .form-msg`)?.textContent === t, [scope, text]);

test("alerts: an admin edits a threshold in place; the API has exactly the new value and the audit old → new", async () => {
  const who = await apiJSON("/api/whoami");
  const scope = "project:proj_002";
  const panel = page.locator(`.thresholds[data-scope="${scope}"]`);
  const save = () => panel.locator(".threshold-edit button[type=submit]").click();
  // A 50 % forecast threshold, added in the page (billing contact and webhook, the form's default).
  await page.fill("#project-proj_002-pct", "50");
  await page.selectOption("#project-proj_002-basis", "forecast");
  await panel.locator(".threshold-form button[type=submit]").click();
  await page.waitForSelector(`.thresholds[data-scope="${scope}"] .source[data-source=project]`);
  const before = await api("GET", "/api/projects/proj_002/thresholds");
  const i = before.json.thresholds.findIndex((x) => x.percent === 50 && x.basis === "forecast");
  assert.equal(i, 2);

  // Edit it in place: 65 % of the cost so far, to every admin and two extra addresses, not to the
  // billing contact or the webhook.
  await panel.locator(`button.edit-threshold[data-index="${i}"]`).click();
  assert.equal(await page.evaluate(() => document.activeElement.id), "project-proj_002-edit-pct");
  assert.equal(await panel.locator(`button.edit-threshold[data-index="${i}"]`).getAttribute("aria-expanded"), "true");
  assert.deepEqual([await page.inputValue("#project-proj_002-edit-pct"), await page.inputValue("#project-proj_002-edit-basis"),
    await page.isChecked("#project-proj_002-edit-billingContact"), await page.isChecked("#project-proj_002-edit-admins"),
    await page.isChecked("#project-proj_002-edit-webhook"), await page.inputValue("#project-proj_002-edit-emails")], ["50", "forecast", true, false, true, ""]);
  await page.fill("#project-proj_002-edit-pct", "65");
  await page.selectOption("#project-proj_002-edit-basis", "actual");
  await page.uncheck("#project-proj_002-edit-billingContact");
  await page.check("#project-proj_002-edit-admins");
  await page.uncheck("#project-proj_002-edit-webhook");
  await page.fill("#project-proj_002-edit-emails", "ops@acme.example, cfo@acme.example");
  await screenshot("console-alerts-edit.png", panel, {}, false);
  await axeCheck(page, "admin, editing a threshold");
  await save();
  await formMsgIs(page, scope, "Changed the 50 % forecast threshold to 65 % actual.");
  const after = await api("GET", "/api/projects/proj_002/thresholds");
  assert.equal(after.text, '{"teamId":"team_acme","projectId":"proj_002","source":"project","thresholds":[' +
    '{"percent":65,"basis":"actual","recipients":{"billingContact":false,"admins":true,"emails":["ops@acme.example","cfo@acme.example"],"webhook":false},"fixed":false},' +
    '{"percent":80,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":true},' +
    '{"percent":100,"basis":"actual","recipients":{"billingContact":false,"admins":true,"emails":[],"webhook":true},"fixed":true}]}\n');
  assert.deepEqual(await thresholdRows(panel), wantRows(after.json.thresholds));
  assert.equal(await panel.locator(".threshold-edit").count(), 0, "the edit form closed");
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute("aria-label")), "Edit the 65 % actual threshold");

  // The audit trail: old → new, by the admin's member and token, in the API and on the page.
  const ev = (await apiJSON("/api/audit?limit=1")).events[0];
  assert.deepEqual([ev.action, ev.target, ev.actorMember, ev.actorToken, ev.old, ev.new],
    ["thresholds", "proj_002", "ada@acme.example", who.tokenId, storedList(before.json.thresholds), storedList(after.json.thresholds)]);
  await page.waitForFunction((n) => document.querySelector("#audit-table tbody tr td:nth-child(6) code")?.textContent === n, ev.new);
  const row = await page.locator("#audit-table tbody tr").first().evaluate((tr) => [...tr.children].map((c) => c.textContent));
  assert.deepEqual(row, [ev.at.replace("T", " ").replace("Z", ""), `ada@acme.example · ${who.tokenId}`, "thresholds", "proj_002", ev.old, ev.new]);

  // Who gets the seed's 80 % warning: more recipients; its percent and basis stay.
  await panel.locator('button.edit-threshold[data-index="1"]').click();
  assert.equal(await page.evaluate(() => document.activeElement.id), "project-proj_002-edit-billingContact");
  assert.equal(await page.isDisabled("#project-proj_002-edit-pct"), true);
  assert.equal(await page.isDisabled("#project-proj_002-edit-basis"), true);
  await page.check("#project-proj_002-edit-admins");
  await page.fill("#project-proj_002-edit-emails", "finance@acme.example");
  await save();
  await formMsgIs(page, scope, "Saved the 80 % actual threshold: billing contact, every admin, finance@acme.example, webhook.");
  const t80 = await api("GET", "/api/projects/proj_002/thresholds");
  assert.deepEqual(t80.json.thresholds.map((x) => [x.percent, x.basis, x.recipients, x.fixed]), [
    [65, "actual", { billingContact: false, admins: true, emails: ["ops@acme.example", "cfo@acme.example"], webhook: false }, false],
    [80, "actual", { billingContact: true, admins: true, emails: ["finance@acme.example"], webhook: true }, true],
    [100, "actual", { billingContact: false, admins: true, emails: [], webhook: true }, true]]);
  // The 100 % alert always goes to every admin: that box cannot be cleared. Cancel sends nothing.
  await panel.locator('button.edit-threshold[data-index="2"]').click();
  assert.equal(await page.isChecked("#project-proj_002-edit-admins"), true);
  assert.equal(await page.isDisabled("#project-proj_002-edit-admins"), true);
  assert.match(await panel.locator(".threshold-edit").textContent(), /always goes to every admin/);
  await panel.locator(".threshold-edit button.cancel-edit").click();
  assert.equal(await panel.locator(".threshold-edit").count(), 0);
  assert.equal(await page.evaluate(() => document.activeElement.dataset.index), "2");

  // Bad input in the edit form: the API's message word for word; the form stays open, nothing changes.
  await panel.locator('button.edit-threshold[data-index="0"]').click();
  for (const [v, want] of [["0", "thresholds[0].percent: 0 must be positive"], ["1000.5", "thresholds[0].percent: 1000.5 is above the maximum of 1000"],
    ["80", "thresholds[1].percent: 80 % on the actual cost is listed twice"]]) {
    expect(400, 1);
    await page.fill("#project-proj_002-edit-pct", v);
    await save();
    await formMsgIs(page, scope, want);
    assert.equal(await panel.locator(".threshold-edit").count(), 1);
  }
  await page.fill("#project-proj_002-edit-pct", "fifty");
  await save();
  await formMsgIs(page, scope, "Enter the percentage as a number, such as 50 or 75.5 (above 0, at most 1000).");
  assert.equal((await api("GET", "/api/projects/proj_002/thresholds")).text, t80.text, "nothing was changed");
  // 1000 % is the largest the API takes.
  await page.fill("#project-proj_002-edit-pct", "1000");
  await save();
  await formMsgIs(page, scope, "Changed the 65 % actual threshold to 1000 % actual.");
  assert.deepEqual((await apiJSON("/api/projects/proj_002/thresholds")).thresholds.map((x) => x.percent), [80, 100, 1000]);

  // Back to the team default.
  await panel.locator("button.inherit").click();
  await page.waitForSelector(`.thresholds[data-scope="${scope}"] .source[data-source=default]`);
  assert.equal((await apiJSON("/api/projects/proj_002/thresholds")).source, "default");
});

test("alerts: the team's time zone, shown and set by an admin; the daily budgets follow it", async () => {
  const card = page.locator("#team-card");
  const msgIs = (t) => page.waitForFunction((m) => document.querySelector("#team-card .time-zone .form-msg")?.textContent === m, t);
  const saveZone = () => card.locator(".time-zone-form button[type=submit]").click();
  assert.deepEqual(await apiJSON("/api/teams/team_acme/time-zone"), { teamId: "team_acme", timeZone: "UTC" });
  assert.equal(await card.locator("[data-field=team-time-zone]").textContent(), "UTC");
  assert.equal(await page.inputValue("#team-time-zone"), "UTC");
  // An unknown zone: the API's message, word for word; nothing changes.
  expect(400, 1);
  await page.fill("#team-time-zone", "Mars/Base");
  await saveZone();
  await msgIs('timeZone: "Mars/Base" is not an IANA time zone name (e.g. Europe/Berlin)');
  assert.equal((await apiJSON("/api/teams/team_acme/time-zone")).timeZone, "UTC");
  assert.equal(await card.locator("[data-field=team-time-zone]").textContent(), "UTC");
  // Asia/Kolkata: shown, in the API, and each project's day runs from its midnight.
  await page.fill("#team-time-zone", "Asia/Kolkata");
  await saveZone();
  await msgIs("Daily budgets now reset at midnight in Asia/Kolkata.");
  assert.equal(await card.locator("[data-field=team-time-zone]").textContent(), "Asia/Kolkata");
  assert.deepEqual(await apiJSON("/api/teams/team_acme/time-zone"), { teamId: "team_acme", timeZone: "Asia/Kolkata" });
  const d = await apiJSON("/api/projects/proj_001/daily-budget");
  assert.equal(d.timeZone, "Asia/Kolkata");
  assert.match(d.dayStart, /T00:00:00\+05:30$/);
  await page.waitForFunction((s) => document.querySelector("article[data-alerts-project=proj_001] .daily")?.textContent.includes(s),
    `team's time zone (Asia/Kolkata): ${d.dayStart.replace("T", " ")} to ${d.dayEnd.replace("T", " ")}.`);
  const ev = (await apiJSON("/api/audit?limit=1")).events[0];
  assert.deepEqual([ev.action, ev.target, ev.actorMember, ev.actorToken, ev.old, ev.new],
    ["time_zone", "team_acme", "ada@acme.example", (await apiJSON("/api/whoami")).tokenId, "", "Asia/Kolkata"]);
});

test("alerts: a member sees the time zone and thresholds read-only; a change the API refuses (403) is said", async () => {
  const p = await newPage();
  await signIn(p, tokens.member);
  assert.equal((await apiJSON("/api/teams/team_acme/time-zone", tokens.member)).timeZone, "Asia/Kolkata");
  assert.equal(await p.locator("#team-card [data-field=team-time-zone]").textContent(), "Asia/Kolkata");
  assert.match(await p.locator("#team-card .time-zone").textContent(), /Only a team admin can change the time zone\./);
  for (const sel of ["#team-time-zone", ".time-zone-form", "button.edit-threshold", ".threshold-edit"]) {
    assert.equal(await p.locator(sel).count(), 0, `a member has no ${sel}`);
  }
  const put = await api("PUT", "/api/teams/team_acme/time-zone", tokens.member, { timeZone: "Europe/Berlin" });
  assert.deepEqual([put.status, put.json.error.message], [403, "changing the time zone needs the admin role; the token has member"]);
  await p.close();

  // The page learned the role at sign-in. When the API refuses a change anyway (here the tab's
  // token is swapped for the member's behind the admin's page), the page says so in the API's
  // words, keeps what was typed, and changes nothing.
  const refused = (m) => `Not changed: ${m}. Sign in with a team admin's token to change it.`;
  const panel = page.locator('.thresholds[data-scope="project:proj_001"]');
  await page.evaluate((t) => sessionStorage.setItem("cygni.token", t), tokens.member);
  try {
    expect(403, 2);
    await panel.locator('button.edit-threshold[data-index="0"]').click();
    await page.check("#project-proj_001-edit-admins");
    await panel.locator(".threshold-edit button[type=submit]").click();
    await formMsgIs(page, "project:proj_001", refused("changing thresholds needs the admin role; the token has member"));
    assert.equal(await panel.locator(".threshold-edit").count(), 1, "the form stays open");
    assert.equal((await apiJSON("/api/projects/proj_001/thresholds")).source, "default");
    await page.fill("#team-time-zone", "Europe/Berlin");
    await page.locator("#team-card .time-zone-form button[type=submit]").click();
    await page.waitForFunction((m) => document.querySelector("#team-card .time-zone .form-msg")?.textContent === m,
      refused("changing the time zone needs the admin role; the token has member"));
    assert.equal((await apiJSON("/api/teams/team_acme/time-zone")).timeZone, "Asia/Kolkata");
  } finally {
    await page.evaluate((t) => sessionStorage.setItem("cygni.token", t), tokens.admin);
  }
  // With the admin's token again: back to UTC.
  await panel.locator(".threshold-edit button.cancel-edit").click();
  await page.fill("#team-time-zone", "UTC");
  await page.locator("#team-card .time-zone-form button[type=submit]").click();
  await page.waitForSelector("#team-card [data-field=team-time-zone]:text('UTC')");
  assert.equal((await apiJSON("/api/teams/team_acme/time-zone")).timeZone, "UTC");
});

test("audit: newest first, a page at a time, exactly the API's events", async () => {
  // Enough changes for a second page.
  for (let i = 0; i < 14; i++) {
    assert.equal((await api("PUT", "/api/projects/proj_002/mute", tokens.member, { muted: i % 2 === 0 })).status, 200);
  }
  const all = (await apiJSON("/api/audit?limit=1000")).events;
  assert.ok(all.length > 25, `${all.length} events`);
  const rowOf = (e) => [e.at.replace("T", " ").replace("Z", ""), [e.actorMember || (e.actor.startsWith("cli:") ? e.actor : "team token"), e.actorToken].filter(Boolean).join(" · "),
    e.action.replaceAll("_", " "), e.target, e.old || "—", e.new || "—"];
  await page.reload();
  await page.waitForSelector("body[data-loaded=true]", { timeout: 60_000 });
  const rows = () => page.locator("#audit-table tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  assert.deepEqual(await rows(), all.slice(0, 25).map(rowOf));
  assert.ok(all.slice(0, 25).every((e, i, xs) => i === 0 || xs[i - 1].id > e.id), "newest first");
  assert.equal(await page.isVisible("#audit-more"), true);
  await page.click("#audit-more");
  await page.waitForFunction((n) => document.querySelectorAll("#audit-table tbody tr").length === n, Math.min(all.length, 50));
  assert.deepEqual(await rows(), all.slice(0, 50).map(rowOf));
  assert.equal(await page.isVisible("#audit-more"), all.length > 50);
});

test("alerts: another team's projects and team are not reachable", async () => {
  const g = await newPage();
  await signIn(g, tokens.globex);
  assert.deepEqual(await g.locator("article.alerts").evaluateAll((as) => as.map((a) => a.dataset.alertsProject)), ["proj_003", "proj_004"]);
  assert.equal(await g.locator('.thresholds[data-scope="team:team_globex"]').count(), 1);
  // Globex's audit trail holds nothing of Acme's.
  const rows = await g.locator("#audit-table").textContent();
  assert.doesNotMatch(rows, /proj_00[12]|acme/);
  // Asked from the page itself with Globex's token, Acme's objects are 404.
  expect(404, 6);
  const answers = await g.evaluate(async (tok) => {
    const h = { Authorization: `Bearer ${tok}`, "Content-Type": "application/json" };
    const out = [];
    for (const [m, path, body] of [["GET", "/api/projects/proj_001/thresholds"], ["PUT", "/api/projects/proj_001/thresholds", '{"thresholds":null}'],
      ["GET", "/api/teams/team_acme/thresholds"], ["PUT", "/api/teams/team_acme/budget", '{"limit":1}'], ["GET", "/api/projects/proj_002/daily-budget"],
      ["PUT", "/api/projects/proj_001/mute", '{"muted":true}']]) {
      const r = await fetch(path, { method: m, headers: h, body });
      out.push(`${m} ${path} ${r.status} ${(await r.json()).error?.code}`);
    }
    return out;
  }, tokens.globex);
  assert.deepEqual(answers, [
    "GET /api/projects/proj_001/thresholds 404 not_found", "PUT /api/projects/proj_001/thresholds 404 not_found",
    "GET /api/teams/team_acme/thresholds 404 not_found", "PUT /api/teams/team_acme/budget 404 not_found",
    "GET /api/projects/proj_002/daily-budget 404 not_found", "PUT /api/projects/proj_001/mute 404 not_found"]);
  assert.equal((await apiJSON("/api/projects/proj_001/thresholds")).source, "default", "Acme's list is untouched");
  await g.close();
});

test("no console errors, page errors or CSP violations", () => {
  assert.deepEqual(problems, []);
  assert.deepEqual([...expected].filter(([, n]) => n !== 0), [], "every expected refusal was seen");
});
