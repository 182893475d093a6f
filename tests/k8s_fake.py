"""A stand-in for a Kubernetes API server, for the kubernetes provisioner's tests.

This fakes a cluster because none can run here (no container runtime, no kubelet, no way
to install one on this machine). Everything on the control plane's side is real: the
kubeconfig is parsed by the official client, requests go over HTTP with the bearer token,
bodies are the rendered manifests. The fake keeps objects in memory, answers the handful
of calls the provisioner makes (server-side apply, get, list by label selector, delete),
and plays the StatefulSet controller in its simplest form: one replica means a pod
``<name>-0`` from the template, zero means none, a new template (configuration hash)
replaces the pod. What the kubelet would report — a pod Ready, crash-looping, failing to
pull its image — the tests set on the pod (``set_container``, ``set_ready``). What this
cannot show: that a real API server accepts the objects (the schema tests in
test_k8s_manifests.py cover their shape) and that a real kubelet runs the image.

``fake_cluster(tmp_path)`` serves one on a loopback port and writes a kubeconfig for it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

NS = "chains"
TOKEN = "test-token-7f3a"  # the fake API server's, nothing else's
_PATH = re.compile(r"/(?:api/v1|apis/apps/v1)/namespaces/(?P<ns>[^/]+)/(?P<plural>[a-z]+)"
                   r"(?:/(?P<name>[^/]+))?")
_KINDS = {"secrets": "Secret", "services": "Service", "persistentvolumeclaims":
          "PersistentVolumeClaim", "statefulsets": "StatefulSet", "pods": "Pod"}


@dataclass
class FakeCluster:
    """The objects, the requests seen, and failures to inject."""

    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[tuple[int, str]] = field(default_factory=list)
    """(status, reason) answered to the next requests instead of serving them."""
    on_request: Callable[[str, str], None] | None = None
    """Called with (method, path) before a request is served, outside the lock: a test
    acts there while the client waits for the answer (an interleaving, made certain)."""
    fail_method: str | None = None
    """Only requests of this method (``PATCH``: applies) take ``fail_next``'s answers."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    versions: int = 0
    hang: threading.Event | None = None
    """While set to an unset event, requests wait for it (a server that does not answer)."""

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.objects.get(("pods", name))

    def set_container(self, pod: str, **fields: Any) -> None:
        """What the kubelet would report of the node's container."""
        with self.lock:
            status = self.objects[("pods", pod)]["status"]
            status["containerStatuses"][0].update(fields)
            status["phase"] = "Running" if fields.get("ready") else status["phase"]

    def set_ready(self, sts_name: str) -> None:
        """What a cluster reports once the node answers its readiness probe: the
        container Ready, the pod Running, the StatefulSet's ``readyReplicas`` 1."""
        self.set_container(f"{sts_name}-0", ready=True, state={"running": {}})
        with self.lock:
            sts = self.objects[("statefulsets", sts_name)]
            sts["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}

    def applied(self) -> list[dict[str, Any]]:
        """The bodies of every server-side apply so far, in order."""
        with self.lock:
            return [r["body"] for r in self.requests if r["method"] == "PATCH"]

    def deleted(self) -> list[tuple[str, str]]:
        """(plural, name) of every DELETE so far, in order."""
        with self.lock:
            return [tuple(r["path"].rsplit("/", 2)[-2:])  # type: ignore[misc]
                    for r in self.requests if r["method"] == "DELETE"]

    def _sync(self, sts_name: str) -> None:
        """The StatefulSet controller: one replica, one pod of the current template."""
        sts = self.objects.get(("statefulsets", sts_name))
        pod_name = f"{sts_name}-0"
        pod = self.objects.get(("pods", pod_name))
        want = 0 if sts is None else sts["spec"]["replicas"]
        if want == 0:
            self.objects.pop(("pods", pod_name), None)
            return
        assert sts is not None
        template = sts["spec"]["template"]
        if pod is not None and pod["metadata"]["annotations"] == \
                template["metadata"]["annotations"]:
            return
        self.versions += 1
        self.objects[("pods", pod_name)] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "namespace": NS, "uid": f"uid-{self.versions}",
                         "labels": dict(template["metadata"]["labels"]),
                         "annotations": dict(template["metadata"]["annotations"])},
            "spec": template["spec"],
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "node", "ready": False, "restartCount": 0, "image":
                 template["spec"]["containers"][0]["image"], "imageID": "",
                 "state": {"waiting": {"reason": "ContainerCreating"}}}]}}

    def handle(self, method: str, url: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        doc = json.loads(body) if body else None
        with self.lock:
            self.requests.append({"method": method, "path": parts.path, "query": query,
                                  "content_type": headers.get("content-type"),
                                  "authorization": headers.get("authorization"),
                                  "body": json.loads(body) if body else None})
        if self.on_request is not None:
            self.on_request(method, parts.path)
        if self.hang is not None:
            self.hang.wait(30)
        with self.lock:
            if self.fail_next and self.fail_method in (None, method):
                code, reason = self.fail_next.pop(0)
                return code, _status(code, reason, "injected failure")
            m = _PATH.fullmatch(parts.path)
            if m is None or m["ns"] != NS or m["plural"] not in _KINDS:
                return 404, _status(404, "NotFound", f"no route {parts.path}")
            plural, name = m["plural"], m["name"]
            if method == "GET" and name is None:
                sel = dict(kv.split("=", 1) for kv in query.get("labelSelector", "").split(",")
                           if kv)
                items = [o for (p, _), o in sorted(self.objects.items()) if p == plural and
                         sel.items() <= o["metadata"].get("labels", {}).items()]
                return 200, {"apiVersion": "v1", "kind": _KINDS[plural] + "List",
                             "metadata": {}, "items": items}
            obj = self.objects.get((plural, name))
            if method == "GET":
                return (200, obj) if obj else (404, _status(404, "NotFound", name))
            if method == "PATCH":
                assert doc is not None
                assert doc["metadata"]["name"] == name and doc["kind"] == _KINDS[plural]
                doc["metadata"]["uid"] = (obj or {}).get("metadata", {}).get("uid", name)
                self.objects[(plural, name)] = doc
                if plural == "statefulsets":
                    self._sync(name)
                return 200, doc
            if method == "DELETE":
                if obj is None:
                    return 404, _status(404, "NotFound", name)
                del self.objects[(plural, name)]
                if plural == "statefulsets":
                    self._sync(name)
                elif plural == "pods":
                    self._sync(name.rsplit("-", 1)[0])   # the controller makes another
                # as the API server: the object for some kinds, a Status for others
                return 200, _status(200, "", "deleted") if plural in (
                    "secrets", "statefulsets") else obj
            return 405, _status(405, "MethodNotAllowed", method)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Status", "metadata": {},
            "status": "Success" if code < 300 else "Failure", "reason": reason,
            "message": message, "code": code}


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                code, doc = 401, _status(401, "Unauthorized", "no token")
            else:
                code, doc = cluster.handle(self.command, self.path,
                                           {k.lower(): v for k, v in self.headers.items()},
                                           body)
            raw = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    """A ``FakeCluster`` served on 127.0.0.1 and a kubeconfig (token auth) naming it."""
    fake = FakeCluster()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({       # JSON is YAML: the client reads it as such
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {
            "server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "ops", "user": {"token": TOKEN}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "ops"}}]}))
    try:
        yield fake, kubeconfig
    finally:
        if fake.hang is not None:
            fake.hang.set()
        server.shutdown()
        server.server_close()
