"""The control plane's HTTP API (FastAPI): ``create_app(settings)``.

Owns the web edge only: authentication of requests (signed with an access key, or a
console session with its CSRF token), role checks, rate limits, request ids, the JSON
error format, the OpenAPI document and the built-in API explorer (``GET /explorer``).
Every rule lives in ``consortia.control.services``; this package is the only one of the
control plane that imports a web framework. Spec: ``docs/spec/control-api.md``.
"""

from consortia.control.http.app import create_app

__all__ = ["create_app"]
