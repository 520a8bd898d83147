// The Cygni Usage web console: a single page over the public REST API (see /api/openapi.json),
// signed in with the user's API token. Nothing here computes a bill: every number shown is one
// the API answered, summed (where a chart needs it) in exact decimals.

import { api, ApiError, forgetToken, savedToken, saveToken } from "./api.js";
import { budgetLine, stackedBars } from "./charts.js";
import { fixed, micros, toNumber } from "./decimal.js";

const $ = (id) => document.getElementById(id);

// el builds an element: attributes (on* are listeners), then children (strings become text).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// table renders rows under columns in a keyboard-scrollable region.
function table(caption, columns, rows) {
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    el("table", {},
      el("caption", {}, caption),
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : "" }, c.label)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, columns.map((c, i) =>
        i === 0 ? el("th", { scope: "row" }, r[i]) : el("td", { class: c.num ? "num" : "" }, r[i])))))));
}

function announce(msg) {
  $("status").textContent = "";
  setTimeout(() => { $("status").textContent = msg; }, 50);
}

function showError(id, err) {
  $(id).textContent = err ? (err.message || String(err)) : "";
}

const usd = (s) => "$" + s;
const num = (v) => (v === undefined || v === null ? "" : String(v));

// ---- dates: the server's clock and calendar days in a time zone ----

// budgetCharts and usageCharts are the Chart.js instances on the page, destroyed before redrawing.
const state = { who: null, now: new Date(), projects: [], budgetCharts: new Map(), usageCharts: [], usageSeq: 0, audit: [], auditNext: "" };

function dayIn(date, tz) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
}

function addDays(day, n) {
  const d = new Date(day + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function isoWeek(day) {
  const d = new Date(day + "T00:00:00Z");
  const dow = (d.getUTCDay() + 6) % 7; // Monday 0
  d.setUTCDate(d.getUTCDate() - dow + 3); // the week's Thursday
  const jan4 = new Date(Date.UTC(d.getUTCFullYear(), 0, 4));
  return 1 + Math.round(((d - jan4) / 86400000 - 3 + ((jan4.getUTCDay() + 6) % 7)) / 7);
}

// bucketLabel names a bucket by its period's local date and time, as the API wrote it.
function bucketLabel(period, groupBy) {
  const day = period.slice(0, 10);
  switch (groupBy) {
    case "hour": return `${day.slice(5)} ${period.slice(11, 16)}`;
    case "week": return `W${String(isoWeek(day)).padStart(2, "0")} ${day}`;
    case "month": return day.slice(0, 7);
    default: return day;
  }
}

// defaultRange is the range shown first for a bucket size, ending today in tz.
function defaultRange(groupBy, tz) {
  const today = dayIn(state.now, tz);
  switch (groupBy) {
    case "hour": return [addDays(today, -1), today];
    case "week": return [addDays(today, -7 * 5), today];
    case "month": return [shiftMonths(today.slice(0, 8) + "01", -5), today];
    default: return [addDays(today, -6), today];
  }
}

function shiftMonths(day, n) {
  const d = new Date(day + "T00:00:00Z");
  d.setUTCMonth(d.getUTCMonth() + n);
  return d.toISOString().slice(0, 10);
}

// ---- sign in ----

async function signIn(token) {
  const who = await api.whoami(token);
  saveToken(token);
  state.who = who;
  state.now = who.now ? new Date(who.now) : new Date();
  showApp();
}

function showSignin(message) {
  state.who = null;
  $("app").hidden = true;
  $("nav").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = $("token").value.trim();
  if (!token) {
    $("signin-error").textContent = "Enter a token.";
    return;
  }
  $("signin-error").textContent = "";
  try {
    await signIn(token);
  } catch (err) {
    $("signin-error").textContent = err instanceof ApiError && err.status === 401
      ? "This token is not valid: unknown, malformed or revoked." : err.message;
  }
});

$("signout").addEventListener("click", () => {
  forgetToken();
  for (const c of [...state.budgetCharts.values(), ...state.usageCharts]) c.destroy();
  state.budgetCharts.clear();
  state.usageCharts = [];
  showSignin("Signed out.");
});

async function showApp() {
  const w = state.who;
  $("signin").hidden = true;
  $("app").hidden = false;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-text").textContent = `${w.teamName || w.teamId} · ${w.role}${w.operator ? " · operator" : ""}`;
  $("nav-unmapped").hidden = !w.operator;
  $("unmapped").hidden = !w.operator;
  $("nav-audit").hidden = w.role !== "admin";
  $("audit").hidden = w.role !== "admin";
  $("main").focus();
  announce(`Signed in to ${w.teamName || w.teamId} as ${w.role}.`);
  try {
    const limits = await api.limits();
    state.projects = limits.projects;
  } catch (err) {
    showError("budgets-error", err);
    state.projects = [];
  }
  fillProjectSelect($("u-project"));
  fillProjectSelect($("e-project"));
  setupUsageForm();
  setupExportForm();
  await Promise.all([
    loadBudgets(), loadAlerts(), loadUsage(), loadNotifications(), loadRecommendations(),
    w.role === "admin" ? loadAudit() : Promise.resolve(),
    w.operator ? loadUnmapped() : Promise.resolve(),
  ]);
  document.body.dataset.loaded = "true";
}

function fillProjectSelect(sel) {
  sel.replaceChildren(el("option", { value: "" }, "All projects"),
    ...state.projects.map((p) => el("option", { value: p.projectId }, `${p.projectName} (${p.projectId})`)));
}

// ---- budgets ----

async function loadBudgets() {
  showError("budgets-error", null);
  const cards = $("budget-cards");
  for (const c of state.budgetCharts.values()) c.destroy();
  state.budgetCharts.clear();
  cards.replaceChildren();
  try {
    for (const p of state.projects) {
      cards.append(await budgetCard(p));
    }
  } catch (err) {
    showError("budgets-error", err);
  }
}

async function budgetCard(p) {
  const b = await api.budget(p.projectId);
  const a = await api.analytics({ projectId: p.projectId, startDate: b.periodStart, endDate: state.now.toISOString(), groupBy: "day", tz: "UTC" });
  // The billing period's days, the cost so far summed exactly, and the forecast from today on.
  const days = [];
  for (let d = b.periodStart.slice(0, 10); d < b.periodEnd.slice(0, 10); d = addDays(d, 1)) days.push(d);
  const costByDay = new Map(a.data.map((x) => [x.period.slice(0, 10), micros(x.cost.total)]));
  const today = dayIn(state.now, "UTC");
  let run = 0n;
  const cumulative = days.map((d) => {
    if (d > today) return null;
    run += costByDay.get(d) || 0n;
    return toNumber(run);
  });
  const ti = days.indexOf(today);
  const forecast = days.map((d, i) => {
    if (i < ti || ti < 0) return null;
    const last = days.length - 1;
    return last === ti ? b.forecast : cumulative[ti] + ((b.forecast - cumulative[ti]) * (i - ti)) / (last - ti);
  });

  const id = `budget-${p.projectId}`;
  const statusText = { ok: "OK", warning: "Warning: 80 % reached", exceeded: "Exceeded: over budget" }[b.status] || b.status;
  const canvas = el("canvas", { role: "img", "aria-label": `${p.projectName}: $${b.used} of a $${b.limit} budget used, forecast $${b.forecast} by the end of the period` });
  const card = el("article", { class: `card budget status-${b.status}`, "aria-labelledby": id, "data-project": p.projectId },
    el("h3", { id }, p.projectName, " ", el("span", { class: "muted" }, p.projectId)),
    el("p", { class: `status-line status-${b.status}` }, el("strong", {}, statusText), ` — ${b.percentUsed} % of the budget used`),
    el("dl", { class: "figures" },
      el("div", {}, el("dt", {}, "Used"), el("dd", { "data-field": "used" }, usd(fixedNum(b.used)))),
      el("div", {}, el("dt", {}, "Budget"), el("dd", { "data-field": "limit" }, usd(fixedNum(b.limit)))),
      el("div", {}, el("dt", {}, "Remaining"), el("dd", { "data-field": "remaining" }, usd(fixedNum(b.remaining)))),
      el("div", {}, el("dt", {}, "Forecast"), el("dd", { "data-field": "forecast" }, usd(fixedNum(b.forecast))))),
    el("div", { class: "chart-box small" }, canvas),
    el("p", { class: "muted small-print" }, `Billing period ${b.periodStart.slice(0, 10)} to ${addDays(b.periodEnd.slice(0, 10), -1)} (UTC). Deployments: ${p.deployments}.`),
  );
  if (state.who.role === "admin") card.append(limitForm(p, b));
  else card.append(el("p", { class: "muted small-print" }, "Only a team admin can change the budget."));
  state.budgetCharts.get(p.projectId)?.destroy();
  state.budgetCharts.set(p.projectId, budgetLine(canvas, { labels: days.map((d) => d.slice(5)), cumulative, forecast, limit: b.limit }));
  return card;
}

// fixedNum writes a JSON number of the budget API with two decimals (the API wrote them so).
function fixedNum(v) {
  return fixed(micros(String(v).includes("e") ? Number(v).toFixed(6) : String(v)), 2);
}

function limitForm(p, b) {
  const inputId = `limit-${p.projectId}`;
  const msg = el("p", { class: "form-msg", role: "status" });
  const input = el("input", { id: inputId, type: "number", min: "0.01", max: "1000000", step: "0.01", value: fixedNum(b.limit), required: true, inputmode: "decimal" });
  return el("form", {
    class: "limit-form",
    novalidate: true,
    onsubmit: async (ev) => {
      ev.preventDefault();
      const form = ev.currentTarget;
      const v = input.value.trim();
      if (!/^\d+(\.\d{1,2})?$/.test(v) || Number(v) <= 0) {
        msg.textContent = "Enter a positive amount with at most two decimals.";
        return;
      }
      try {
        await api.setLimit(p.projectId, Number(v));
        msg.textContent = `Budget set to $${fixed(micros(v), 2)}.`;
        announce(`Budget of ${p.projectName} set to $${fixed(micros(v), 2)}.`);
        const article = form.closest("article");
        const fresh = await budgetCard({ ...p, budgetLimit: Number(v) });
        article.replaceWith(fresh);
        fresh.querySelector("input")?.focus();
      } catch (err) {
        msg.textContent = refusal(err);
      }
    },
  }, el("label", { for: inputId }, "Budget (USD)"), input, el("button", { type: "submit" }, "Save budget"), msg);
}

// ---- alert thresholds, team and daily budgets, mutes (docs/api.md "Alert thresholds") ----

// Every figure here is the API's own text (api.js parses these answers with exactJSON).
const money = (s) => "$" + fixed(micros(s), 2);
const isAdmin = () => state.who?.role === "admin";
const sourceText = {
  project: "this project's own list",
  team: "the team default",
  default: "the default (80 % and 100 %)",
};
const basisText = { actual: "cost so far", forecast: "month-end forecast" };
const teamStatusText = { none: "No budget set", ok: "OK", warning: "Warning: 80 % reached", exceeded: "Exceeded: over budget" };

async function loadAlerts() {
  showError("alerts-error", null);
  const team = $("team-alerts");
  team.replaceChildren();
  try {
    team.append(await teamAlertsCard());
  } catch (err) {
    showError("alerts-error", err);
  }
  await loadProjectAlerts();
}

// loadProjectAlerts draws the projects' cards (again, after the team default changed: the
// projects without a list of their own follow it).
async function loadProjectAlerts() {
  const box = $("project-alerts");
  try {
    const cards = [];
    for (const p of state.projects) cards.push(await projectAlertsCard(p));
    box.replaceChildren(...cards);
  } catch (err) {
    showError("alerts-error", err);
  }
}

async function teamAlertsCard() {
  const w = state.who;
  const [b, t, z] = await Promise.all([api.teamBudget(w.teamId), api.thresholds({ kind: "team", id: w.teamId }), api.timeZone(w.teamId)]);
  const id = "team-alerts-h";
  const budgetBox = el("div", { class: "team-budget" });
  const renderBudget = (b) => {
    budgetBox.className = `team-budget status-${b.status}`;
    budgetBox.replaceChildren(
      el("h4", {}, "Team budget (all projects)"),
      el("p", { class: `status-line status-${b.status}` }, el("strong", { "data-field": "team-status" }, teamStatusText[b.status] || b.status),
        b.percentUsed === null ? " — the team has no budget over all its projects" : ` — ${b.percentUsed} % of the team budget used`),
      el("dl", { class: "figures" },
        el("div", {}, el("dt", {}, "Used"), el("dd", { "data-field": "team-used" }, money(b.used))),
        el("div", {}, el("dt", {}, "Team budget"), el("dd", { "data-field": "team-limit" }, b.limit === null ? "none" : money(b.limit))),
        el("div", {}, el("dt", {}, "Remaining"), el("dd", { "data-field": "team-remaining" }, b.remaining === null ? "—" : money(b.remaining))),
        el("div", {}, el("dt", {}, "Forecast"), el("dd", { "data-field": "team-forecast" }, money(b.forecast)))),
      el("p", { class: "muted small-print" }, `${b.projects} projects, billing period ${b.periodStart.slice(0, 10)} to ${b.periodEnd.slice(0, 10)}.`),
      isAdmin() ? amountForm({
        id: "team-limit", label: "Team budget (USD)", value: b.limit, save: "Save team budget", remove: "Remove team budget",
        send: (v) => api.setTeamBudget(w.teamId, v),
        done: (fresh) => { renderBudget(fresh); return fresh.limit === null ? "Team budget removed." : `Team budget set to ${money(fresh.limit)}.`; },
      }) : el("p", { class: "muted small-print" }, "Only a team admin can change the team budget."));
  };
  renderBudget(b);
  return el("article", { class: "card team-alerts", id: "team-card", "aria-labelledby": id },
    el("h3", { id }, "Team ", w.teamName || w.teamId),
    budgetBox,
    timeZonePanel(w.teamId, z),
    thresholdsPanel({ kind: "team", id: w.teamId, name: "the team default" }, t));
}

// timeZonePanel shows the team's time zone, in which its projects' daily budgets reset at local
// midnight, and lets an admin set it: any IANA name (the API refuses an unknown one and says why).
function timeZonePanel(teamId, z) {
  const box = el("div", { class: "time-zone" });
  const msg = el("p", { class: "form-msg", role: "status" });
  const render = (z) => {
    box.replaceChildren(
      el("h4", {}, "Time zone of daily budgets"),
      el("p", {}, "Daily budgets reset at midnight in ", el("strong", { "data-field": "team-time-zone" }, z.timeZone), "."),
      isAdmin() ? timeZoneForm(z) : el("p", { class: "muted small-print" }, "Only a team admin can change the time zone."));
  };
  const timeZoneForm = (z) => {
    const input = el("input", { id: "team-time-zone", type: "text", list: "team-time-zones", autocomplete: "off", spellcheck: "false", value: z.timeZone, "aria-describedby": "team-time-zone-hint" });
    return el("form", {
      class: "limit-form time-zone-form",
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        msg.textContent = "";
        try {
          const fresh = await api.setTimeZone(teamId, input.value.trim());
          render(fresh);
          const said = `Daily budgets now reset at midnight in ${fresh.timeZone}.`;
          msg.textContent = said;
          announce(said);
          $("team-time-zone")?.focus();
          loadProjectAlerts();
          refreshAudit();
        } catch (err) {
          msg.textContent = refusal(err);
        }
      },
    }, el("label", { for: "team-time-zone" }, "Team time zone (IANA name)"), input,
    el("button", { type: "submit" }, "Save time zone"),
    el("p", { class: "muted small-print", id: "team-time-zone-hint" }, "For example Europe/Berlin or America/New_York; empty for UTC."),
    el("datalist", { id: "team-time-zones" }, zoneNames().map((n) => el("option", { value: n }))),
    msg);
  };
  render(z);
  return box;
}

async function projectAlertsCard(p) {
  const [t, d] = await Promise.all([api.thresholds({ kind: "project", id: p.projectId }), api.dailyBudget(p.projectId)]);
  const id = `alerts-${p.projectId}`;
  return el("article", { class: "card alerts", "data-alerts-project": p.projectId, "aria-labelledby": id },
    el("h3", { id }, p.projectName, " ", el("span", { class: "muted" }, p.projectId)),
    thresholdsPanel({ kind: "project", id: p.projectId, name: p.projectName }, t),
    dailyPanel(p, d),
    await mutePanel(p));
}

function recipientsText(r) {
  const parts = [];
  if (r.billingContact) parts.push("billing contact");
  if (r.admins) parts.push("every admin");
  parts.push(...r.emails);
  if (r.webhook) parts.push("webhook");
  return parts.length ? parts.join(", ") : "nobody";
}

// decimalKey writes a decimal text in one form ("075.50" → "75.5"), to compare two of them.
function decimalKey(s) {
  const [int, frac = ""] = String(s).split(".");
  const f = frac.replace(/0+$/, "");
  return int.replace(/^0+(?=\d)/, "") + (f ? "." + f : "");
}

// thresholdsPanel shows the list in force for a project or the team default, and to an admin
// the controls that change it: add a threshold, edit one in place (its percent, basis and
// recipients; of the fixed 80 % and 100 % only who gets them), remove one. Each change PUTs the
// whole list (the fixed ones included), and the API's answer is drawn again.
function thresholdsPanel(scope, t) {
  const box = el("div", { class: "thresholds", "data-scope": `${scope.kind}:${scope.id}` });
  const key = `${scope.kind}-${scope.id}`;
  const msg = el("p", { class: "form-msg", role: "status", "data-field": "thresholds-msg" });
  const say = (m) => { msg.textContent = m; };
  let editing = -1; // the entry whose edit form is open
  const entries = (list) => list.map((x) => ({ percent: x.percent, basis: x.basis, recipients: x.recipients }));
  // put sends list; after the answer is drawn, focus names what gets the focus in the new list.
  const put = async (list, done, focus) => {
    msg.textContent = "";
    try {
      const fresh = await api.setThresholds(scope, list);
      editing = -1;
      render(fresh);
      msg.textContent = done;
      announce(done);
      box.querySelector(focus(fresh))?.focus();
      if (scope.kind === "team") loadProjectAlerts();
      refreshAudit();
    } catch (err) {
      msg.textContent = refusal(err);
    }
  };
  const addFocus = () => `#${key}-pct`;
  // editFocus is the Edit button of entry in the list the API answered (sorted anew).
  const editFocus = (entry) => (fresh) => {
    const i = fresh.thresholds.findIndex((x) => x.basis === entry.basis && decimalKey(x.percent) === decimalKey(entry.percent));
    return i < 0 ? addFocus() : `button.edit-threshold[data-index="${i}"]`;
  };
  const render = (t) => {
    const name = (x) => `${x.percent} % ${x.basis}`;
    const rows = t.thresholds.map((x, i) => [
      `${x.percent} %`, basisText[x.basis] || x.basis, recipientsText(x.recipients),
      el("span", { class: "row-actions" },
        x.fixed ? el("span", { class: "fixed-tag" }, "fixed, always on") : null,
        isAdmin() ? el("button", {
          type: "button", class: "edit-threshold secondary", "data-index": String(i), "aria-expanded": String(editing === i),
          "aria-label": `Edit the ${name(x)} threshold`,
          onclick: () => {
            editing = editing === i ? -1 : i;
            msg.textContent = "";
            render(t);
            box.querySelector(editing < 0 ? `button.edit-threshold[data-index="${i}"]` : `#${key}-edit-${x.fixed ? "billingContact" : "pct"}`)?.focus();
          },
        }, "Edit") : null,
        isAdmin() && !x.fixed ? el("button", {
          type: "button", class: "remove-threshold secondary", "aria-label": `Remove the ${name(x)} threshold`,
          onclick: () => put(entries(t.thresholds.filter((_, j) => j !== i)), `Removed the ${name(x)} threshold.`, addFocus),
        }, "Remove") : null),
    ]);
    const heading = scope.kind === "team" ? "Team default thresholds" : "Alert thresholds";
    const x = t.thresholds[editing];
    box.replaceChildren(...[
      el("h4", {}, heading),
      el("p", { class: "source", "data-source": t.source }, "In force: ", el("strong", {}, scope.kind === "team" && t.source === "team" ? "the team's own list" : sourceText[t.source] || t.source), "."),
      table(scope.kind === "team" ? heading : `${heading} of ${scope.name}`,
        [{ label: "Threshold" }, { label: "On the" }, { label: "Recipients" }, { label: "Change" }], rows),
      isAdmin() && x ? thresholdForm(`${key}-edit`, {
        entry: x, title: `Edit the ${name(x)} threshold`, submit: "Save threshold", say,
        cancel: () => {
          const i = editing;
          editing = -1;
          render(t);
          box.querySelector(`button.edit-threshold[data-index="${i}"]`)?.focus();
        },
        send: (entry) => {
          const same = entry.basis === x.basis && decimalKey(entry.percent) === decimalKey(x.percent);
          put(entries(t.thresholds).map((y, j) => (j === editing ? entry : y)),
            same ? `Saved the ${name(x)} threshold: ${recipientsText(entry.recipients)}.` : `Changed the ${name(x)} threshold to ${name(entry)}.`,
            editFocus(entry));
        },
      }) : null,
      isAdmin() ? thresholdForm(key, {
        title: "Add a threshold", submit: "Add threshold", say,
        send: (entry) => put([...entries(t.thresholds), entry], `Added a ${name(entry)} threshold.`, addFocus),
      }) : null,
      isAdmin() && t.source === (scope.kind === "team" ? "team" : "project")
        ? el("button", {
          type: "button", class: "inherit secondary",
          onclick: () => put(null, scope.kind === "team" ? "The team uses the default thresholds again." : "The project uses the team default again.", addFocus),
        }, scope.kind === "team" ? "Use the default (80 % and 100 %)" : "Use the team default")
        : null,
      isAdmin() ? null : el("p", { class: "muted small-print" }, "Only a team admin can change the thresholds."),
      msg].filter(Boolean));
  };
  render(t);
  return box;
}

// refusal is what the page says when the API refuses a change: the API's message word for word,
// and for a 403 (the token in this tab is not an admin's, whatever it was at sign-in) what to do.
function refusal(err) {
  return err instanceof ApiError && err.status === 403
    ? `Not changed: ${err.message}. Sign in with a team admin's token to change it.` : err.message;
}

const emailShape = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+$/;

// thresholdForm adds a threshold, or edits entry (one of the list the API answered). The page
// checks that the percentage is a number and splits the addresses; the API judges the rest
// (above 0, at most 1000, two decimals, not listed twice) and its message is shown. Of a fixed
// entry only the recipients change, and the 100 % one always goes to every admin.
function thresholdForm(key, { entry, title, submit, say, send, cancel }) {
  const fixed = entry?.fixed === true;
  const exceeded = fixed && decimalKey(entry.percent) === "100";
  const r = entry?.recipients || { billingContact: true, admins: false, emails: [], webhook: true };
  const pct = el("input", { id: `${key}-pct`, type: "text", inputmode: "decimal", autocomplete: "off", required: true, value: entry?.percent, disabled: fixed, "aria-describedby": `${key}-pct-hint` });
  const basis = el("select", { id: `${key}-basis`, disabled: fixed },
    el("option", { value: "actual" }, "cost so far (actual)"), el("option", { value: "forecast" }, "month-end forecast"));
  if (entry) basis.value = entry.basis;
  const check = (name, label, checked, disabled) => el("div", { class: "check" },
    el("input", { type: "checkbox", id: `${key}-${name}`, name, checked, disabled }), el("label", { for: `${key}-${name}` }, label));
  const emails = el("input", { id: `${key}-emails`, type: "text", autocomplete: "off", spellcheck: "false", placeholder: "cfo@example.com, ops@example.com", value: r.emails.join(", ") });
  const titleId = `${key}-title`;
  return el("form", {
    class: entry ? "threshold-edit" : "threshold-form",
    novalidate: true,
    "aria-labelledby": titleId,
    onsubmit: (ev) => {
      ev.preventDefault();
      const f = ev.currentTarget;
      const v = pct.value.trim();
      if (!/^\d+(\.\d+)?$/.test(v)) {
        say("Enter the percentage as a number, such as 50 or 75.5 (above 0, at most 1000).");
        pct.focus();
        return;
      }
      const list = emails.value.split(/[\s,]+/).filter(Boolean);
      const bad = list.find((e) => !emailShape.test(e));
      if (bad !== undefined) {
        say(`"${bad}" is not a plain e-mail address.`);
        emails.focus();
        return;
      }
      if (list.length > 10) {
        say(`At most 10 extra addresses, got ${list.length}.`);
        emails.focus();
        return;
      }
      send({
        percent: v, basis: basis.value,
        recipients: {
          billingContact: f.elements.billingContact.checked, admins: f.elements.admins.checked,
          emails: list, webhook: f.elements.webhook.checked,
        },
      });
    },
  },
  el("h5", { id: titleId, class: "form-title" }, title),
  el("div", {}, el("label", { for: `${key}-pct` }, "Percent of the budget"), pct,
    el("p", { class: "muted small-print", id: `${key}-pct-hint` }, fixed ? "Fixed: the seed's alert stays; choose who gets it." : "Above 0, at most 1000.")),
  el("div", {}, el("label", { for: `${key}-basis` }, "On the"), basis),
  el("fieldset", {}, el("legend", {}, "Recipients"),
    check("billingContact", "Billing contact", r.billingContact), check("admins", "Every admin", r.admins || exceeded, exceeded),
    check("webhook", "The webhook", r.webhook),
    exceeded ? el("p", { class: "muted small-print" }, "The 100 % alert always goes to every admin; they cannot mute it.") : null),
  el("div", {}, el("label", { for: `${key}-emails` }, "Extra e-mail addresses"), emails),
  el("div", { class: "submit" }, el("button", { type: "submit" }, submit),
    cancel ? el("button", { type: "button", class: "secondary cancel-edit", onclick: cancel }, "Cancel") : null));
}

// amountForm sets or removes a budget amount (team, daily): checked before it is sent, sent as
// the typed text, and the API's answer drawn by done.
function amountForm({ id, label, value, save, remove, send, done }) {
  const msg = el("p", { class: "form-msg", role: "status" });
  const input = el("input", { id, type: "text", inputmode: "decimal", autocomplete: "off", value: value === null ? "" : fixed(micros(value), 2) });
  const run = async (v) => {
    msg.textContent = "";
    try {
      const fresh = await send(v);
      const said = done(fresh);
      announce(said);
      document.getElementById(id)?.focus();
      const m = document.getElementById(id)?.closest("form")?.querySelector(".form-msg");
      if (m) m.textContent = said;
      refreshAudit();
    } catch (err) {
      msg.textContent = refusal(err);
    }
  };
  return el("form", {
    class: "limit-form amount-form",
    novalidate: true,
    onsubmit: (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      if (!/^\d+(\.\d{1,2})?$/.test(v) || micros(v) <= 0n) {
        msg.textContent = "Enter a positive amount with at most two decimals.";
        return;
      }
      run(v);
    },
  }, el("label", { for: id }, label), input,
  el("div", { class: "submit" }, el("button", { type: "submit" }, save),
    value === null ? null : el("button", { type: "button", class: "secondary", onclick: () => run(null) }, remove)),
  msg);
}

function dailyPanel(p, d) {
  const box = el("div", { class: "daily" });
  const render = (d) => {
    const day = `${d.dayStart.replace("T", " ")} to ${d.dayEnd.replace("T", " ")}`;
    box.className = `daily${d.exceeded ? " status-exceeded" : ""}`;
    box.replaceChildren(
      el("h4", {}, "Daily budget"),
      el("p", { class: "status-line" + (d.exceeded ? " status-exceeded" : "") }, d.dailyLimit === null
        ? el("span", { "data-field": "daily-status" }, "No daily budget.")
        : el("span", { "data-field": "daily-status" }, el("strong", {}, d.exceeded ? "Exceeded today" : "Within today's budget"), ` — ${d.percentUsed} % used`)),
      el("dl", { class: "figures" },
        el("div", {}, el("dt", {}, "Used today"), el("dd", { "data-field": "daily-used" }, money(d.used))),
        el("div", {}, el("dt", {}, "Daily budget"), el("dd", { "data-field": "daily-limit" }, d.dailyLimit === null ? "none" : money(d.dailyLimit)))),
      el("p", { class: "muted small-print" }, `Today in the team's time zone (${d.timeZone}): ${day}.`),
      isAdmin() ? amountForm({
        id: `daily-${p.projectId}`, label: "Daily budget (USD)", value: d.dailyLimit, save: "Save daily budget", remove: "Remove daily budget",
        send: (v) => api.setDailyBudget(p.projectId, v),
        done: (fresh) => { render(fresh); return fresh.dailyLimit === null ? `Daily budget of ${p.projectName} removed.` : `Daily budget of ${p.projectName} set to ${money(fresh.dailyLimit)}.`; },
      }) : el("p", { class: "muted small-print" }, "Only a team admin can change the daily budget."));
  };
  render(d);
  return box;
}

// mutePanel is the token's member's own preference for a project's warnings.
async function mutePanel(p) {
  const box = el("div", { class: "mute" }, el("h4", {}, "My notifications"));
  const note = el("p", { class: "muted small-print" }, "Exceeded alerts to admins cannot be muted: an admin always gets the 100 % alert.");
  if (!state.who.member) {
    box.append(el("p", { class: "muted small-print" }, "This token belongs to no member, so it has no notification preferences (cygni-usage token create --member EMAIL)."), note);
    return box;
  }
  const msg = el("p", { class: "form-msg", role: "status" });
  const cb = el("input", { type: "checkbox", id: `mute-${p.projectId}`, class: "mute-toggle" });
  try {
    cb.checked = (await api.mute(p.projectId)).muted;
  } catch (err) {
    msg.textContent = err.message;
    cb.disabled = true;
  }
  cb.addEventListener("change", async () => {
    const want = cb.checked;
    cb.disabled = true;
    msg.textContent = "";
    try {
      const r = await api.setMute(p.projectId, want);
      cb.checked = r.muted;
      const said = r.muted ? `Warnings of ${p.projectName} muted for ${r.member}.` : `Warnings of ${p.projectName} go to ${r.member} again.`;
      msg.textContent = said;
      announce(said);
      refreshAudit();
    } catch (err) {
      cb.checked = !want;
      msg.textContent = err.message;
    } finally {
      cb.disabled = false;
    }
  });
  box.append(el("div", { class: "check" }, cb, el("label", { for: cb.id }, `Mute this project's warnings for me (${state.who.member})`)), note, msg);
  return box;
}

// ---- audit trail (admins) ----

const AUDIT_PAGE = 25;

async function loadAudit(path = `/api/audit?limit=${AUDIT_PAGE}`, append = false) {
  showError("audit-error", null);
  const more = $("audit-more");
  try {
    const a = await api.audit(path);
    state.audit = append ? [...state.audit, ...a.events] : a.events;
    state.auditNext = a.next || "";
  } catch (err) {
    showError("audit-error", err);
    return;
  }
  const who = (e) => [e.actorMember || (e.actor.startsWith("cli:") ? e.actor : "team token"), e.actorToken].filter(Boolean).join(" · ");
  $("audit-table").replaceChildren(state.audit.length
    ? table("Changes, newest first", [{ label: "When (UTC)" }, { label: "Who" }, { label: "Change" }, { label: "Of" }, { label: "Old" }, { label: "New" }],
      state.audit.map((e) => [e.at.replace("T", " ").replace("Z", ""), who(e), e.action.replaceAll("_", " "), e.target,
        el("code", { class: "audit-val" }, e.old || "—"), el("code", { class: "audit-val" }, e.new || "—")]))
    : el("p", { class: "muted" }, "No changes recorded yet."));
  more.hidden = !state.auditNext;
  if (!more.dataset.ready) {
    more.dataset.ready = "true";
    more.addEventListener("click", () => loadAudit(state.auditNext, true));
  }
}

// refreshAudit shows the first page again after a change this page made.
function refreshAudit() {
  if (isAdmin()) loadAudit();
}

// ---- usage over time ----

const metrics = [
  { key: "cost", title: "Cost", unit: "USD", get: (b) => b.cost.total, format: (v) => "$" + Number(v).toFixed(2) },
  { key: "cpuHours", title: "vCPU-hours (reserved)", unit: "vCPU-hours", get: (b) => b.cpuHours, format: (v) => Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 }) },
  { key: "memoryGbHours", title: "Memory GB-hours (reserved)", unit: "GB-hours", get: (b) => b.memoryGbHours, format: (v) => Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 }) },
  { key: "egressGB", title: "Egress (GB = 2³⁰ bytes)", unit: "GB", get: (b) => b.egressGB, format: (v) => Number(v).toLocaleString("en-US", { maximumFractionDigits: 3 }) },
  { key: "requests", title: "HTTP requests", unit: "requests", get: (b) => b.requests, format: (v) => Number(v).toLocaleString("en-US", { maximumFractionDigits: 0 }) },
  { key: "containerInstances", title: "Running tasks (mean)", unit: "tasks", get: (b) => b.containerInstances, format: (v) => Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 }) },
];

// zoneNames are the browser's time zones, after common ones it may list under an older name
// (Asia/Calcutta).
function zoneNames() {
  const common = ["UTC", "America/Los_Angeles", "America/New_York", "America/Sao_Paulo", "Europe/London",
    "Europe/Berlin", "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"];
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return [...new Set([...common, ...zones])];
}

function setupUsageForm() {
  const tzSel = $("u-tz");
  if (!tzSel.options.length) {
    const all = zoneNames();
    tzSel.replaceChildren(...all.map((z) => el("option", { value: z }, z)));
    const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
    tzSel.value = all.includes(local) ? local : "UTC";
    $("u-group").addEventListener("change", () => { setRange(); loadUsage(); });
    $("usage-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadUsage(); });
  }
  setRange();
}

function setRange() {
  const [from, to] = defaultRange($("u-group").value, $("u-tz").value);
  $("u-from").value = from;
  $("u-to").value = to;
}

async function loadUsage() {
  showError("usage-error", null);
  const projectId = $("u-project").value;
  const groupBy = $("u-group").value;
  const tz = $("u-tz").value;
  const from = $("u-from").value;
  const to = $("u-to").value;
  if (!from || !to || from > to) {
    showError("usage-error", new Error("Choose a From date on or before the To date."));
    return;
  }
  const params = { startDate: from, endDate: addDays(to, 1), groupBy, tz, deployments: "true" };
  if (projectId) params.projectId = projectId;
  const seq = ++state.usageSeq;
  let a;
  try {
    a = await api.analytics(params);
  } catch (err) {
    if (seq === state.usageSeq) showError("usage-error", err);
    return;
  }
  if (seq !== state.usageSeq) return; // a newer request was made meanwhile; it draws
  for (const c of state.usageCharts) c.destroy();
  state.usageCharts = [];
  const labels = a.data.map((b) => bucketLabel(b.period, groupBy));
  const series = [];
  for (const p of a.projects) {
    for (const d of p.deployments || []) {
      series.push({ label: projectId ? d.deployment : `${p.projectId} · ${d.deployment}`, data: d.data });
    }
  }
  $("usage-total").textContent = `Total cost ${from} to ${to} (${tz}): $${a.totals.cost.total} — ${labels.length} ${groupBy} buckets.`;
  const box = $("charts");
  box.replaceChildren();
  for (const m of metrics) {
    const canvas = el("canvas", { role: "img", "aria-label": `${m.title} per ${groupBy}, stacked by deployment. The numbers are in the table below.` });
    const rows = a.data.map((b, i) => [labels[i], ...series.map((s) => num(m.get(s.data[i]))), num(m.get(b))]);
    const fig = el("figure", { class: "card chart", "data-metric": m.key },
      el("figcaption", {}, el("h3", {}, m.title)),
      el("div", { class: "chart-box" }, canvas),
      el("details", {}, el("summary", {}, "Numbers"),
        table(`${m.title} per ${groupBy} (${tz})`, [{ label: "Bucket" }, ...series.map((s) => ({ label: s.label, num: true })), { label: "Total", num: true }], rows)));
    box.append(fig);
    state.usageCharts.push(stackedBars(canvas, {
      labels, unit: m.unit, format: m.format,
      series: series.map((s) => ({ label: s.label, values: s.data.map((b) => Number(m.get(b))) })),
    }));
  }
}

// ---- notifications ----

async function loadNotifications() {
  showError("notifications-error", null);
  const list = $("notification-list");
  try {
    const n = await api.notifications();
    setUnread(n.unreadCount);
    list.replaceChildren(...(n.notifications.length ? n.notifications.map(notificationItem)
      : [el("li", { class: "muted" }, "No notifications yet. Budget warnings appear here within a minute of a project crossing 80 % of its budget.")]));
  } catch (err) {
    showError("notifications-error", err);
  }
}

function setUnread(n) {
  $("unread").textContent = n > 0 ? String(n) : "";
  $("unread").setAttribute("aria-label", `${n} unread`);
}

function notificationItem(n) {
  const li = el("li", { class: `notification severity-${n.severity}${n.read ? " read" : ""}`, "data-id": n.id });
  const render = (n) => {
    li.className = `notification severity-${n.severity}${n.read ? " read" : ""}`;
    li.replaceChildren(
      el("p", { class: "n-head" }, el("span", { class: `sev sev-${n.severity}` }, n.severity), " ",
        el("span", { class: "n-type" }, n.type.replaceAll("_", " ")), n.projectId ? ` · ${n.projectId}` : "",
        " · ", el("time", { datetime: n.createdAt }, n.createdAt.replace("T", " ").replace("Z", " UTC"))),
      el("p", { class: "n-msg" }, n.message),
      n.read ? el("p", { class: "muted small-print" }, `Read ${n.readAt.replace("T", " ").replace("Z", " UTC")}`)
        : el("button", {
          type: "button", class: "mark-read", "aria-label": `Mark as read: ${n.message}`,
          onclick: async (ev) => {
            ev.target.disabled = true;
            try {
              const updated = await api.markRead(n.id);
              render(updated);
              const unread = Number($("unread").textContent || 0) - 1;
              setUnread(Math.max(unread, 0));
              announce("Notification marked as read.");
              li.querySelector("p")?.setAttribute("tabindex", "-1");
              li.querySelector("p")?.focus();
            } catch (err) {
              ev.target.disabled = false;
              showError("notifications-error", err);
            }
          },
        }, "Mark as read"));
  };
  render(n);
  return li;
}

// ---- recommendations ----

async function loadRecommendations() {
  showError("recommendations-error", null);
  try {
    const r = await api.recommendations();
    $("recommendation-table").replaceChildren(r.recommendations.length
      ? table(`Recommendations over the last ${r.window}`, [
        { label: "Deployment" }, { label: "Now (per task)" }, { label: "Peak use" }, { label: "Recommended" },
        { label: "Tasks (mean)", num: true }, { label: "Saving / month", num: true }, { label: "Why" }],
      r.recommendations.map((x) => [`${x.projectId} · ${x.deployment}`, `${x.currentCpu} vCPU, ${x.currentMemoryGB} GB`,
        `${x.peakCpuUsed} vCPU, ${x.peakMemoryUsedGB} GB`, `${x.recommendedCpu} vCPU, ${x.recommendedMemoryGB} GB`,
        num(x.averageTasks), usd(x.monthlySaving), x.reason]))
      : el("p", { class: "muted" }, "Nothing to right-size: every deployment uses more than half of what it reserves."));
  } catch (err) {
    showError("recommendations-error", err);
  }
}

// ---- export ----

function setupExportForm() {
  const today = dayIn(state.now, "UTC");
  $("e-from").value = addDays(today, -6);
  $("e-to").value = today;
  const form = $("export-form");
  if (form.dataset.ready) return;
  form.dataset.ready = "true";
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("export-error", null);
    const format = ev.submitter?.value || "csv";
    const from = $("e-from").value;
    const to = $("e-to").value;
    if (!from || !to || from > to) {
      showError("export-error", new Error("Choose a From date on or before the To date."));
      return;
    }
    const params = { startDate: from, endDate: addDays(to, 1), format };
    if ($("e-project").value) params.projectId = $("e-project").value;
    try {
      const res = await api.exportFile(params);
      const blob = await res.blob();
      const cd = res.headers.get("Content-Disposition") || "";
      const name = (/filename="([^"]+)"/.exec(cd) || [])[1] || `cygni-usage.${format}`;
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      announce(`Downloaded ${name}.`);
    } catch (err) {
      showError("export-error", err);
    }
  });
}

// ---- unmapped usage (operators) ----

async function loadUnmapped() {
  showError("unmapped-error", null);
  try {
    const u = await api.unmapped();
    $("unmapped-table").replaceChildren(u.unmapped.length
      ? table(`Unmapped services, ${u.from.slice(0, 10)} to ${u.to.slice(0, 10)}`,
        [{ label: "Deployment" }, { label: "Reason" }, { label: "Project tag" }, { label: "Cluster" }, { label: "Region" }, { label: "Last seen" }],
        u.unmapped.map((x) => [x.deployment, x.reason.replaceAll("_", " "), x.project || "—", x.cluster, x.region, x.lastSeen]))
      : el("p", { class: "muted" }, "Every service with usage belongs to a known project."));
  } catch (err) {
    showError("unmapped-error", err);
  }
}

// ---- start ----

(async () => {
  const token = savedToken();
  if (!token) {
    showSignin();
    return;
  }
  try {
    await signIn(token);
  } catch (err) {
    forgetToken();
    showSignin(err instanceof ApiError && err.status === 401 ? "The saved token is no longer valid; sign in again." : err.message);
  }
})();
