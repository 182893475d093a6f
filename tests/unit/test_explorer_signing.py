"""The explorer's in-browser signer (control/http/static/signing.js) against the spec's test
vectors, run by Node.js (WebCrypto, as in a browser): the page signs exactly as the SDK and
the server do. Node is a real JavaScript engine; a browser run comes with the console tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.control_helpers import require_node
from tests.unit.test_api_signing import read_vectors

ROOT = Path(__file__).resolve().parents[2]
SIGNING_JS = ROOT / "src/consortia/control/http/static/signing.js"
SPEC = ROOT / "docs/spec/api-signing.md"

_RUNNER = """
import { signRequest, canonicalQuery, formatTimestamp } from %s;
const inputs = JSON.parse(await new Promise((ok) => {
  let text = "";
  process.stdin.on("data", (d) => text += d);
  process.stdin.on("end", () => ok(text));
}));
const out = [];
for (const v of inputs) out.push(await signRequest(v));
out.push({ query: canonicalQuery("b=2&a=%%7e&a=1&c"),
           ts: formatTimestamp(new Date(Date.UTC(2025, 2, 1, 12, 0, 5, 999))) });
console.log(JSON.stringify(out));
"""



def _js_input(inp: dict) -> dict:
    url = urlsplit(inp["url"])
    return {"accessKeyId": inp["access_key_id"], "secret": inp["secret"],
            "method": inp["method"], "host": url.netloc,
            "path": "/".join(unquote(seg) for seg in url.path.split("/")),
            "query": url.query, "headers": inp["headers"], "body": inp["body"],
            "timestamp": inp["timestamp"], "nonce": inp["nonce"],
            "signedHeaders": inp["signed_headers"]}


def test_signing_js_reproduces_every_vector() -> None:
    vectors = read_vectors(SPEC.read_text())
    assert len(vectors) >= 2
    inputs = [json.loads(v["input"]) for v in vectors.values()]
    script = _RUNNER % json.dumps(SIGNING_JS.as_uri())
    proc = subprocess.run([require_node(), "--input-type=module", "-e", script],
                          input=json.dumps([_js_input(i) for i in inputs]),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    *results, extra = json.loads(proc.stdout)
    for vector, got in zip(vectors.values(), results, strict=True):
        assert got["canonicalRequest"] == vector["canonical-request"]
        assert got["stringToSign"] == vector["string-to-sign"]
        headers = "\n".join(f"{name}: {got['headers'][name]}" for name in (
            "x-consortia-date", "x-consortia-nonce", "x-consortia-content-sha256",
            "authorization"))
        assert headers == vector["headers"]
    assert extra == {"query": "a=1&a=~&b=2&c=", "ts": "20250301T120005Z"}
