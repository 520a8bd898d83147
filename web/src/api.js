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

async function request(method, path, { token = savedToken(), body, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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
  return raw ? res : res.json();
}

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
  exportFile: (params) => request("GET", "/api/usage/export?" + new URLSearchParams(params), { raw: true }),
};
