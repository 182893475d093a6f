// The API explorer's logic, without the page: read the OpenAPI document, build example
// bodies, and send a call signed with an access key (signing.js) or made with the console
// session (cookie + X-CSRF-Token). No DOM here, so Node.js runs it in the tests exactly as
// the browser does (fetch and WebCrypto are the same APIs in both).

import { formatTimestamp, newNonce, signRequest } from "./signing.js";

export const METHODS = ["get", "post", "put", "patch", "delete"];
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export function resolveRef(spec, schema) {
  let s = schema;
  for (let i = 0; s && s.$ref && i < 32; i++) {
    const parts = s.$ref.replace(/^#\//, "").split("/");
    s = parts.reduce((node, key) => (node ? node[key] : undefined), spec);
  }
  return s || {};
}

// Operations grouped by their first tag, in the document's tag order:
// [{ tag, description, operations: [{ id, method, path, summary, description,
//    parameters: [{ name, in, required, schema, description }], bodySchema, bodyRequired,
//    action, secured }] }]
export function listOperations(spec) {
  const groups = new Map();
  for (const t of spec.tags || []) groups.set(t.name, { tag: t.name, description: t.description || "", operations: [] });
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!groups.has(tag)) groups.set(tag, { tag, description: "", operations: [] });
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      groups.get(tag).operations.push({
        id: op.operationId || `${method} ${path}`,
        method: method.toUpperCase(),
        path,
        summary: op.summary || "",
        description: op.description || "",
        parameters: (op.parameters || []).map((p) => resolveRef(spec, p))
          .filter((p) => p.in === "path" || p.in === "query")
          .map((p) => ({ name: p.name, in: p.in, required: !!p.required,
                         schema: resolveRef(spec, p.schema), description: p.description || "" })),
        bodySchema: body ? resolveRef(spec, body.schema) : null,
        bodyRequired: !!(op.requestBody && op.requestBody.required),
        action: op["x-consortia-action"] || null,
        secured: Array.isArray(op.security) && op.security.length > 0,
      });
    }
  }
  return [...groups.values()].filter((g) => g.operations.length > 0);
}

// A small example value for a JSON schema: required properties only, from examples,
// defaults and enums where the schema gives them.
export function exampleFor(spec, schema, depth = 0) {
  const s = resolveRef(spec, schema);
  if (depth > 6) return null;
  if (s.examples && s.examples.length) return s.examples[0];
  if (s.default !== undefined) return s.default;
  if (s.enum && s.enum.length) return s.enum[0];
  const variants = s.anyOf || s.oneOf;
  if (variants) {
    const first = variants.map((v) => resolveRef(spec, v)).find((v) => v.type !== "null");
    return first ? exampleFor(spec, first, depth + 1) : null;
  }
  switch (s.type) {
    case "object": {
      const out = {};
      for (const name of s.required || []) {
        out[name] = exampleFor(spec, (s.properties || {})[name] || {}, depth + 1);
      }
      return out;
    }
    case "array": return [];
    case "integer": case "number": return s.minimum !== undefined ? s.minimum : 0;
    case "boolean": return false;
    case "string": return "";
    default: return null;
  }
}

// The decoded path (what the server routes on and the signature covers), the same path
// percent-encoded for the URL, and the query string.
export function buildTarget(op, values = {}) {
  const missing = [];
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name) => {
    const v = values[name];
    if (v === undefined || v === "") missing.push(name);
    return v === undefined ? "" : String(v);
  });
  if (missing.length) throw new Error(`missing path parameter(s): ${missing.join(", ")}`);
  const urlPath = op.path.replace(/\{([^}]+)\}/g, (_, name) => encodeURIComponent(String(values[name])));
  const params = new URLSearchParams();
  for (const p of op.parameters.filter((q) => q.in === "query")) {
    const v = values[p.name];
    if (v !== undefined && v !== "") params.append(p.name, String(v));
  }
  return { path, urlPath, query: params.toString() };
}

// Send one call. auth: { mode: "key", accessKeyId, secret } | { mode: "session", csrfToken }
// | { mode: "none" }. `host` is the Host header the runtime will send (location.host in a
// browser). Returns { status, headers, text, json, canonicalRequest }.
export async function send({ baseUrl = "", host, op, values = {}, body = "", auth = { mode: "none" },
                             fetchImpl = fetch, now = () => new Date() }) {
  const { path, urlPath, query } = buildTarget(op, values);
  const hasBody = op.bodySchema !== null && body !== undefined && body !== null && body !== "";
  const payload = hasBody ? (typeof body === "string" ? body : JSON.stringify(body)) : "";
  const headers = {};
  if (hasBody) headers["content-type"] = "application/json";
  let canonicalRequest = null;
  if (auth.mode === "key") {
    const signed = await signRequest({
      accessKeyId: auth.accessKeyId, secret: auth.secret, method: op.method, host, path, query,
      headers, body: payload, timestamp: formatTimestamp(now()), nonce: newNonce(),
    });
    Object.assign(headers, signed.headers);
    canonicalRequest = signed.canonicalRequest;
  } else if (auth.mode === "session" && !SAFE.has(op.method) && auth.csrfToken) {
    headers["x-csrf-token"] = auth.csrfToken;
  }
  const url = baseUrl + urlPath + (query ? `?${query}` : "");
  const res = await fetchImpl(url, { method: op.method, headers, body: hasBody ? payload : undefined,
                                     credentials: "same-origin" });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  const outHeaders = {};
  res.headers.forEach((v, k) => { outHeaders[k] = v; });
  return { status: res.status, headers: outHeaders, text, json, canonicalRequest };
}

// What a network or node answer says about reaching its chain, as lines of text above the
// raw JSON: a network's profile (and EVM chain id on quorum), a quorum node's Ethereum
// JSON-RPC URL (for web3, ethers, Hardhat, MetaMask). Lists are summarized item by item.
export function chainSummary(body) {
  const lines = [];
  const items = body && Array.isArray(body.items) ? body.items : [body];
  for (const item of items) {
    if (!item || typeof item !== "object") continue;
    if (typeof item.profile === "string" && typeof item.chain_id === "string") {
      const evm = item.evm_chain_id != null ? `, EVM chain id ${item.evm_chain_id}` : "";
      lines.push(`network ${item.name}: profile ${item.profile}${evm}`);
    }
    if (typeof item.rpc_url === "string") {
      lines.push(`node ${item.name}: Ethereum JSON-RPC ${item.rpc_url}`);
    }
  }
  return lines;
}
