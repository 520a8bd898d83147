// The console's only way to the server: the public REST API, with the user's bearer token.

const TOKEN_KEY = "cygni.token";

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// ApiError carries the API's {"error": {"code", "message"}} and the HTTP status.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// exactJSON parses an answer keeping every number as the text the API wrote ("530.80" stays
// "530.80", never 530.8): money and percentages are shown from that text, never computed.
function exactJSON(text) {
  return JSON.parse(text, (k, v, ctx) => (typeof v === "number" ? (ctx && typeof ctx.source === "string" ? ctx.source : String(v)) : v));
}

// amountJSON writes a validated decimal text ("12.50") or null as a JSON number, unchanged.
export function amountJSON(text) {
  if (text === null) return "null";
  if (!/^\d+(\.\d{1,2})?$/.test(text)) throw new Error(`not an amount: ${text}`);
  return text;
}

// numberJSON writes a decimal text ("75.5") as that JSON number, unchanged (never through a
// float, so "50.001" reaches the API as it was typed and the API judges it).
export function numberJSON(text) {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new Error(`not a number: ${text}`);
  return typeof JSON.rawJSON === "function" ? JSON.rawJSON(text) : Number(text);
}

async function request(method, path, { token = savedToken(), body, bodyText, raw = false, exact = false } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined || bodyText !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: bodyText !== undefined ? bodyText : body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", `The server did not answer (${e.message}).`);
  }
  if (!res.ok) {
    let code = "http_" + res.status;
    let message = `${method} ${path}: ${res.status} ${res.statusText}`;
    try {
      const j = await res.json();
      if (j && j.error) {
        code = j.error.code || code;
        message = j.error.message || message;
      }
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(res.status, code, message);
  }
  if (raw) return res;
  return exact ? exactJSON(await res.text()) : res.json();
}

const scopePath = (scope) => `/api/${scope.kind === "team" ? "teams" : "projects"}/${encodeURIComponent(scope.id)}`;

export const api = {
  whoami: (token) => request("GET", "/api/whoami", { token }),
  limits: () => request("GET", "/api/usage/limits"),
  setLimit: (projectId, budgetLimit) => request("POST", "/api/usage/limits", { body: { projectId, budgetLimit } }),
  budget: (projectId) => request("GET", `/api/projects/${encodeURIComponent(projectId)}/budget`),
  analytics: (params) => request("GET", "/api/usage/analytics?" + new URLSearchParams(params)),
  notifications: () => request("GET", "/api/usage/notifications?limit=50"),
  markRead: (id) => request("POST", `/api/usage/notifications/${encodeURIComponent(id)}/read`),
  recommendations: () => request("GET", "/api/usage/recommendations"),
  unmapped: () => request("GET", "/api/usage/unmapped"),
  // Budgets the way customers set them (docs/api.md "Alert thresholds"): numbers come back as
  // the API's text (exact: true).
  thresholds: (scope) => request("GET", scopePath(scope) + "/thresholds", { exact: true }),
  // setThresholds sends each percent as its text (numberJSON).
  setThresholds: (scope, thresholds) => request("PUT", scopePath(scope) + "/thresholds", {
    bodyText: JSON.stringify({ thresholds: thresholds && thresholds.map((t) => ({ ...t, percent: numberJSON(t.percent) })) }), exact: true,
  }),
  teamBudget: (teamId) => request("GET", scopePath({ kind: "team", id: teamId }) + "/budget", { exact: true }),
  setTeamBudget: (teamId, limit) => request("PUT", scopePath({ kind: "team", id: teamId }) + "/budget", { bodyText: `{"limit":${amountJSON(limit)}}`, exact: true }),
  dailyBudget: (projectId) => request("GET", scopePath({ kind: "project", id: projectId }) + "/daily-budget", { exact: true }),
  setDailyBudget: (projectId, limit) => request("PUT", scopePath({ kind: "project", id: projectId }) + "/daily-budget", { bodyText: `{"dailyLimit":${amountJSON(limit)}}`, exact: true }),
  timeZone: (teamId) => request("GET", scopePath({ kind: "team", id: teamId }) + "/time-zone"),
  setTimeZone: (teamId, timeZone) => request("PUT", scopePath({ kind: "team", id: teamId }) + "/time-zone", { body: { timeZone } }),
  mute: (projectId) => request("GET", scopePath({ kind: "project", id: projectId }) + "/mute"),
  setMute: (projectId, muted) => request("PUT", scopePath({ kind: "project", id: projectId }) + "/mute", { body: { muted } }),
  // audit takes the first page's path or the API's own "next".
  audit: (path) => {
    if (!path.startsWith("/api/audit?")) throw new Error(`not an audit page: ${path}`);
    return request("GET", path);
  },
  exportFile: (params) => request("GET", "/api/usage/export?" + new URLSearchParams(params), { raw: true }),
};
