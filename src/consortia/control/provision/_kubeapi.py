"""The few Kubernetes API calls the kubernetes provisioner makes, through the official
client, each with a timeout; and how a StatefulSet and its pod read as a ``NodeStatus``.

The ``kubernetes`` package is an optional extra (``pip install 'consortia[kubernetes]'``):
it is imported when a ``KubeApi`` is made, never by rendering.

Objects are written by **server-side apply** (``PATCH`` with
``application/apply-patch+yaml``, field manager ``consortia``, ``force``): one idempotent
call creates the object or brings the fields the control plane owns to the rendered
values, with no read-modify-write race against the cluster's controllers (ADR 0014).
"""

from __future__ import annotations

import time
from typing import Any

from consortia.control.provision._manifests import Manifest
from consortia.control.provision.base import Health, NodeStatus
from consortia.types.errors import ConfigError, ConsortiaError, Unavailable

FIELD_MANAGER = "consortia"
APPLY = "application/apply-patch+yaml"
_STUCK = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
          "CreateContainerError", "RunContainerError")
"""Waiting reasons that need an operator (a wrong image, an unusable configuration)."""


class KubeApi:
    """Core and apps API of one cluster, namespace-scoped calls, results as JSON dicts."""

    def __init__(self, *, kubeconfig: str | None, context: str | None, timeout: float,
                 api_client: Any = None) -> None:
        try:
            from kubernetes import client, config
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ConfigError("the kubernetes provisioner needs the kubernetes client: "
                              "pip install 'consortia[kubernetes]'") from None
        if api_client is None:
            cfg = client.Configuration()
            try:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context, client_configuration=cfg,
                    persist_config=False)
            except (config.ConfigException, OSError, ValueError) as exc:
                raise ConfigError(f"kubeconfig {kubeconfig}: {exc}") from exc
            # No retries inside a call: its timeout bounds it; the next poll, or the
            # operator's next request, is the retry.
            cfg.retries = 0
            api_client = client.ApiClient(configuration=cfg)
        self.client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.timeout = timeout
        self._exc: type[Exception] = client.ApiException

    def close(self) -> None:
        self.client.close()

    def apply(self, m: Manifest) -> None:
        """Server-side apply ``m`` (created if absent)."""
        name, ns = m["metadata"]["name"], m["metadata"]["namespace"]
        kw: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True,
                              "_content_type": APPLY, "_request_timeout": self.timeout}
        call = {"Secret": self.core.patch_namespaced_secret,
                "PersistentVolumeClaim": self.core.patch_namespaced_persistent_volume_claim,
                "Service": self.core.patch_namespaced_service,
                "StatefulSet": self.apps.patch_namespaced_stateful_set}[m["kind"]]
        self._call(f"apply {m['kind']} {ns}/{name}", call, name, ns, m, **kw)

    def delete(self, kind: str, name: str, namespace: str) -> bool:
        """Delete one object; False when it was already gone. The answer (the object or a
        ``Status``, depending on kind and version) is not read."""
        call = {"Secret": self.core.delete_namespaced_secret,
                "PersistentVolumeClaim": self.core.delete_namespaced_persistent_volume_claim,
                "Service": self.core.delete_namespaced_service,
                "StatefulSet": self.apps.delete_namespaced_stateful_set,
                "Pod": self.core.delete_namespaced_pod}[kind]
        return self._call(f"delete {kind} {namespace}/{name}", call, name, namespace,
                          propagation_policy="Background", _request_timeout=self.timeout,
                          _preload_content=False, missing_ok=True) is not None

    def stateful_sets(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        out = self._call(f"list StatefulSets in {namespace}",
                         self.apps.list_namespaced_stateful_set, namespace,
                         label_selector=selector, _request_timeout=self.timeout)
        return list(out.get("items") or [])

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        out = self._call(f"list pods in {namespace}", self.core.list_namespaced_pod, namespace,
                         label_selector=selector, _request_timeout=self.timeout)
        return list(out.get("items") or [])

    def pod(self, name: str, namespace: str) -> dict[str, Any] | None:
        pod: dict[str, Any] | None = self._call(
            f"read pod {namespace}/{name}", self.core.read_namespaced_pod, name, namespace,
            _request_timeout=self.timeout, missing_ok=True)
        return pod

    def _call(self, what: str, fn: Any, *args: Any, missing_ok: bool = False,
              **kw: Any) -> Any:
        """``fn(*args, **kw)`` as JSON; None for a 404 when ``missing_ok``. A refusal of the
        object is a ``ConfigError``; anything else (refused credentials, an unreachable or
        failing API server, a timeout) is ``Unavailable``."""
        try:
            result = fn(*args, **kw)
        except self._exc as exc:
            status = getattr(exc, "status", None)
            if status == 404 and missing_ok:
                return None
            detail = f"{status} {getattr(exc, 'reason', '')}".strip()
            message = _status_message(getattr(exc, "body", None))
            text = f"kubernetes: {what}: {detail}" + (f": {message}" if message else "")
            if status in (400, 409, 422):
                raise ConfigError(text) from None
            raise Unavailable(text) from None
        except ConsortiaError:
            raise
        except Exception as exc:  # urllib3's connection errors and timeouts, pydantic's
            raise Unavailable(f"kubernetes: {what}: {type(exc).__name__}: {exc}") from exc
        if not kw.get("_preload_content", True):
            result.release_conn()
            return True
        return self.client.sanitize_for_serialization(result)


def _status_message(body: object) -> str:
    """The ``message`` of a ``Status`` body, if it is one."""
    import json
    if not isinstance(body, str | bytes):
        return ""
    try:
        doc = json.loads(body)
    except ValueError:
        return str(body)[:300]
    return str(doc.get("message", ""))[:300] if isinstance(doc, dict) else ""


def observe(sts: dict[str, Any] | None, pod: dict[str, Any] | None, *,
            previous: NodeStatus, crash_limit: int,
            now: float | None = None) -> tuple[NodeStatus, str | None, int, Health]:
    """The status, reason, restart count and health a StatefulSet and its pod say.

    Ready → AVAILABLE; stopped (0 replicas) → STOPPED; waiting on an image or a container
    configuration the kubelet cannot use → FAILED; in ``CrashLoopBackOff`` with at least
    ``crash_limit`` restarts → FAILED; otherwise not Ready → UNHEALTHY after having been
    AVAILABLE, FAILED stays FAILED, else CREATING. A pod of an older configuration than the
    StatefulSet's (a rollout under way) is not the node's answer yet: CREATING."""
    at = time.time() if now is None else now
    if sts is None:
        reason = "its StatefulSet is gone from the cluster"
        return NodeStatus.FAILED, reason, 0, Health(False, at, reason)
    if int((sts.get("spec") or {}).get("replicas", 1)) == 0:
        return NodeStatus.STOPPED, None, 0, Health(False, at, "stopped (0 replicas)")
    was_up = previous in (NodeStatus.AVAILABLE, NodeStatus.UNHEALTHY)
    unready = NodeStatus.UNHEALTHY if was_up else (
        NodeStatus.FAILED if previous is NodeStatus.FAILED else NodeStatus.CREATING)
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "waiting for its pod"
        return unready, reason, 0, Health(False, at, reason)
    wanted_hash = _annotations(sts["spec"]["template"]).get("consortia.dev/config-hash")
    if _annotations(pod).get("consortia.dev/config-hash") != wanted_hash:
        reason = "rolling out a new configuration"
        return NodeStatus.CREATING, reason, 0, Health(False, at, reason)
    status = pod.get("status") or {}
    cs = next((c for c in status.get("containerStatuses") or [] if c.get("name") == "node"),
              None)
    restarts = int(cs.get("restartCount", 0)) if cs else 0
    if cs is not None and cs.get("ready"):
        return NodeStatus.AVAILABLE, None, restarts, Health(True, at, "pod Ready")
    waiting = ((cs or {}).get("state") or {}).get("waiting") or {}
    why = waiting.get("reason")
    if why in _STUCK:
        reason = f"{why}: {waiting.get('message') or 'no message'}"
        return NodeStatus.FAILED, reason, restarts, Health(False, at, reason)
    if why == "CrashLoopBackOff":
        last = _last_exit((cs or {}).get("lastState") or {})
        if restarts >= crash_limit:
            reason = f"crash loop: {restarts} restarts, the last: {last}"
            return NodeStatus.FAILED, reason, restarts, Health(False, at, reason)
        reason = f"{last}; the kubelet restarts it with backoff"
        return unready, reason, restarts, Health(False, at, reason)
    unscheduled = next((c for c in status.get("conditions") or []
                        if c.get("type") == "PodScheduled" and c.get("status") == "False"),
                       None)
    if unscheduled is not None:
        reason = f"not scheduled: {unscheduled.get('message') or unscheduled.get('reason')}"
    else:
        reason = f"pod not Ready ({status.get('phase', 'Unknown')})"
    return unready, reason, restarts, Health(False, at, reason)


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _last_exit(last_state: dict[str, Any]) -> str:
    t = last_state.get("terminated")
    if not t:
        return "exited"
    text = f"exited with status {t.get('exitCode')}"
    if t.get("reason") and t.get("reason") != "Error":
        text += f" ({t['reason']})"
    message = (t.get("message") or "").strip()
    return text + (f"; last output:\n{message[-2000:]}" if message else "")
