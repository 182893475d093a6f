// CONSORTIA-HMAC-SHA256 request signing for the API explorer (docs/spec/api-signing.md).
// The same algorithm as consortia.sdk.signing, on WebCrypto: it runs in a browser (a
// secure context: https, or http on localhost) and in Node.js >= 20, where the tests check
// it against the spec's test vectors. Pure: the caller gives the time and the nonce.

export const ALGORITHM = "CONSORTIA-HMAC-SHA256";
const REQUIRED = ["host", "x-consortia-content-sha256", "x-consortia-date", "x-consortia-nonce"];
const OPTIONAL = ["content-type"];
const UNRESERVED = /[A-Za-z0-9\-._~]/;
const utf8 = new TextEncoder();

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

// RFC 3986: unreserved bytes stay, every other byte becomes %XX (upper-case hex).
function encodeBytes(bytes) {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += UNRESERVED.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

// Percent-decoding to bytes, as Python's urllib.parse.unquote_to_bytes: the text is
// UTF-8 encoded, then each "%XX" with two hex digits becomes one byte; a stray "%" stays.
function unquoteToBytes(text) {
  const raw = utf8.encode(text);
  const out = [];
  for (let i = 0; i < raw.length; i++) {
    const h = String.fromCharCode(raw[i + 1] ?? 0, raw[i + 2] ?? 0);
    if (raw[i] === 0x25 && i + 2 < raw.length && /^[0-9A-Fa-f]{2}$/.test(h)) {
      out.push(parseInt(h, 16));
      i += 2;
    } else {
      out.push(raw[i]);
    }
  }
  return Uint8Array.from(out);
}

export function canonicalPath(path) {
  if (!path) return "/";
  return path.split("/").map((seg) => encodeBytes(utf8.encode(seg))).join("/");
}

export function canonicalQuery(rawQuery) {
  const pairs = [];
  for (const part of rawQuery.split("&")) {
    if (!part) continue;
    const at = part.indexOf("=");
    const name = at < 0 ? part : part.slice(0, at);
    const value = at < 0 ? "" : part.slice(at + 1);
    pairs.push([encodeBytes(unquoteToBytes(name.replaceAll("+", " "))),
                encodeBytes(unquoteToBytes(value.replaceAll("+", " ")))]);
  }
  // Byte order of the encoded (ASCII) strings, name first, then value.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

function normalizeValue(value) {
  if (/[\r\n]/.test(value)) throw new Error("a header value must not contain CR or LF");
  return value.replace(/^[ \t]+|[ \t]+$/g, "").replace(/[ \t]+/g, " ");
}

export function formatTimestamp(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
}

async function sha256Hex(bytes) {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmacHex(secret, text) {
  const key = await crypto.subtle.importKey("raw", utf8.encode(secret),
                                            { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, utf8.encode(text)));
}

// Sign one request. `path` is the decoded path the server routes on, `query` the raw query
// string (without "?"), `host` the Host header the browser will send (location.host),
// `body` a string or bytes. Returns the headers to add and the intermediate texts.
export async function signRequest({ accessKeyId, secret, method, host, path, query = "",
                                    headers = {}, body = "", timestamp, nonce,
                                    signedHeaders = [] }) {
  const bodyBytes = typeof body === "string" ? utf8.encode(body) : body;
  const contentSha = await sha256Hex(bodyBytes);
  const values = {};
  for (const [name, value] of Object.entries(headers)) values[name.toLowerCase()] = String(value);
  delete values.authorization;
  Object.assign(values, { host, "x-consortia-date": timestamp, "x-consortia-nonce": nonce,
                          "x-consortia-content-sha256": contentSha });
  const names = [...new Set([...REQUIRED, ...OPTIONAL.filter((n) => n in values),
                             ...signedHeaders.map((n) => n.trim().toLowerCase())])].sort();
  const canonicalHeaders = names.map((n) => {
    if (!(n in values)) throw new Error(`signed header ${n} is missing`);
    return `${n}:${normalizeValue(values[n])}\n`;
  }).join("");
  const canonicalRequest = [method.toUpperCase(), canonicalPath(path), canonicalQuery(query),
                            canonicalHeaders, names.join(";"), contentSha].join("\n");
  const stringToSign = [ALGORITHM, timestamp,
                        await sha256Hex(utf8.encode(canonicalRequest))].join("\n");
  const signature = await hmacHex(secret, stringToSign);
  return {
    headers: {
      "x-consortia-date": timestamp,
      "x-consortia-nonce": nonce,
      "x-consortia-content-sha256": contentSha,
      authorization: `${ALGORITHM} Credential=${accessKeyId}, SignedHeaders=${names.join(";")}, ` +
                     `Signature=${signature}`,
    },
    canonicalRequest, stringToSign, signature,
  };
}

export function newNonce() {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}
