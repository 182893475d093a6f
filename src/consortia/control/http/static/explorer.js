// The API explorer page: lists the operations of /openapi.json by tag and sends them,
// signed in the browser with an access key (kept in this tab's sessionStorage only) or
// with the console session. Text from the API is always inserted as text, never as HTML.

import { chainSummary, exampleFor, listOperations, send } from "./explorer-core.js";

const KEY_STORE = "consortia.explorer.key";
const CSRF_STORE = "consortia.explorer.csrf";
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

let spec = null;
let groups = [];

function auth() {
  if ($("mode-key").checked) {
    const stored = JSON.parse(sessionStorage.getItem(KEY_STORE) || "null");
    const accessKeyId = $("key-id").value.trim() || (stored && stored.accessKeyId) || "";
    const secret = $("key-secret").value || (stored && stored.secret) || "";
    return { mode: "key", accessKeyId, secret };
  }
  return { mode: "session", csrfToken: sessionStorage.getItem(CSRF_STORE) || "" };
}

function showResult(target, result, error) {
  target.replaceChildren();
  if (error) {
    target.append(el("p", { class: "error", text: String(error) }));
    return;
  }
  const rid = result.headers["x-request-id"] || "";
  target.append(el("p", { class: result.status < 400 ? "ok" : "error",
                         text: `HTTP ${result.status}${rid ? `  ·  request id ${rid}` : ""}` }));
  for (const line of result.json !== null ? chainSummary(result.json) : []) {
    target.append(el("p", { class: "summary", text: line }));
  }
  const body = result.json !== null ? JSON.stringify(result.json, null, 2) : result.text;
  target.append(el("pre", { class: "body", text: body || "(empty body)" }));
  if (result.headers["retry-after"]) {
    target.append(el("p", { text: `Retry-After: ${result.headers["retry-after"]} s` }));
  }
  if (result.canonicalRequest) {
    const details = el("details", {}, el("summary", { text: "canonical request (signed)" }));
    details.append(el("pre", { text: result.canonicalRequest }));
    target.append(details);
  }
}

function renderOperation(op) {
  const panel = $("operation");
  panel.replaceChildren();
  panel.append(el("h2", {}, el("span", { class: `method ${op.method.toLowerCase()}`, text: op.method }),
                  " ", el("code", { text: op.path })));
  if (op.summary) panel.append(el("p", { class: "summary", text: op.summary }));
  if (op.description) panel.append(el("p", { class: "description", text: op.description }));
  if (op.action) panel.append(el("p", { class: "action", text: `audited as ${op.action}` }));
  const form = el("form", { id: "call-form" });
  const inputs = {};
  for (const p of op.parameters) {
    const input = el("input", { name: p.name, placeholder: p.schema.type || "", autocomplete: "off" });
    if (p.required) input.required = true;
    inputs[p.name] = input;
    form.append(el("label", {}, el("span", { text: `${p.name} (${p.in}${p.required ? ", required" : ""})` }), input));
  }
  let bodyArea = null;
  if (op.bodySchema) {
    bodyArea = el("textarea", { rows: "10", spellcheck: "false" });
    bodyArea.value = JSON.stringify(exampleFor(spec, op.bodySchema), null, 2);
    form.append(el("label", {}, el("span", { text: "JSON body" }), bodyArea));
  }
  const button = el("button", { type: "submit", text: "Send" });
  form.append(button);
  const out = el("div", { class: "result" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = {};
    for (const [name, input] of Object.entries(inputs)) values[name] = input.value;
    button.disabled = true;
    try {
      const result = await send({ host: location.host, op, values,
                                  body: bodyArea ? bodyArea.value : "", auth: auth() });
      if (op.id === "create_session" && result.status === 201 && result.json) {
        sessionStorage.setItem(CSRF_STORE, result.json.csrf_token);
      }
      showResult(out, result, null);
    } catch (err) {
      showResult(out, null, err);
    } finally {
      button.disabled = false;
    }
  });
  panel.append(form, out);
}

function renderList() {
  const nav = $("operations");
  nav.replaceChildren();
  for (const g of groups) {
    const list = el("ul");
    for (const op of g.operations) {
      const link = el("a", { href: `#${op.id}` },
                      el("span", { class: `method ${op.method.toLowerCase()}`, text: op.method }),
                      " ", op.summary || op.path);
      link.addEventListener("click", () => renderOperation(op));
      list.append(el("li", {}, link));
    }
    nav.append(el("section", {}, el("h3", { text: g.tag, title: g.description }), list));
  }
}

async function login(event) {
  event.preventDefault();
  const op = groups.flatMap((g) => g.operations).find((o) => o.id === "create_session");
  const body = JSON.stringify({ tenant: $("login-tenant").value, username: $("login-user").value,
                                password: $("login-password").value });
  const result = await send({ host: location.host, op, body, auth: { mode: "none" } });
  $("login-password").value = "";
  if (result.status === 201 && result.json) {
    sessionStorage.setItem(CSRF_STORE, result.json.csrf_token);
    $("mode-session").checked = true;
  }
  await refreshWho();
  if (result.status !== 201) $("who").textContent = `login failed: ${result.json?.error?.code || result.status}`;
}

async function logout() {
  const op = groups.flatMap((g) => g.operations).find((o) => o.id === "delete_session");
  await send({ host: location.host, op, auth: { mode: "session", csrfToken: sessionStorage.getItem(CSRF_STORE) || "" } });
  sessionStorage.removeItem(CSRF_STORE);
  await refreshWho();
}

async function refreshWho() {
  const op = groups.flatMap((g) => g.operations).find((o) => o.id === "get_tenant");
  if (!op) return;
  const a = auth();
  if (a.mode === "key" && (!a.accessKeyId || !a.secret)) {
    $("who").textContent = "no access key set";
    return;
  }
  try {
    const r = await send({ host: location.host, op, auth: a });
    $("who").textContent = r.status === 200
      ? `${r.json.user.username} (${r.json.user.role}) in ${r.json.tenant.name}, by ${r.json.auth}`
      : `not authenticated (${r.json?.error?.code || r.status})`;
  } catch (err) {
    $("who").textContent = String(err);
  }
}

function saveKey(event) {
  event.preventDefault();
  const accessKeyId = $("key-id").value.trim();
  const secret = $("key-secret").value;
  sessionStorage.setItem(KEY_STORE, JSON.stringify({ accessKeyId, secret }));
  $("key-secret").value = "";
  $("key-secret").placeholder = "saved in this tab";
  $("mode-key").checked = true;
  refreshWho();
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORE);
  $("key-id").value = "";
  $("key-secret").value = "";
  $("key-secret").placeholder = "secret";
  refreshWho();
}

async function main() {
  if (!globalThis.crypto || !crypto.subtle) {
    $("who").textContent = "WebCrypto is unavailable: open the explorer over https or on localhost";
  }
  spec = await (await fetch("/openapi.json")).json();
  groups = listOperations(spec);
  $("title").textContent = `${spec.info.title} ${spec.info.version}`;
  const stored = JSON.parse(sessionStorage.getItem(KEY_STORE) || "null");
  if (stored) {
    $("key-id").value = stored.accessKeyId;
    $("key-secret").placeholder = "saved in this tab";
  }
  $("key-form").addEventListener("submit", saveKey);
  $("key-forget").addEventListener("click", forgetKey);
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("mode-key").addEventListener("change", refreshWho);
  $("mode-session").addEventListener("change", refreshWho);
  if (!stored) $("mode-session").checked = true;
  renderList();
  const wanted = location.hash.slice(1);
  const first = groups.flatMap((g) => g.operations).find((o) => o.id === wanted) || groups[0]?.operations[0];
  if (first) renderOperation(first);
  await refreshWho();
}

main();
