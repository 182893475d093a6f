"""Access keys and signed API requests: the server side of ``CONSORTIA-HMAC-SHA256``.

Owns: verifying a request (``verify_request``, or ``parse_request`` + ``authenticate``
for an async key lookup), the used-nonce store (``NonceStore``, ``MemoryNonceStore``),
issuing access keys (``generate_access_key``) and sealing their secrets at rest under
the server master key (``SecretBox``). The algorithm itself, shared with the client, is
``consortia.sdk.signing``; the normative text is ``docs/spec/api-signing.md``.

::

    box = SecretBox(master_key)
    creds = generate_access_key()                 # creds.secret is shown once
    store_row(creds.access_key_id, box.seal(creds.access_key_id, creds.secret))
    ...
    key_id = verify_request(request.method, request.scope["path"],
                            request.scope["query_string"], request.headers,
                            await request.body(), lookup, nonce_store)

Every refusal is a ``SignatureError`` (HTTP 401) whose ``code`` is a ``SignatureFailure``.
"""

from consortia.control.auth.keys import SecretBox, generate_access_key, new_master_key
from consortia.control.auth.nonces import MemoryNonceStore, NonceStore
from consortia.control.auth.verify import (
    KeyRecord,
    ParsedRequest,
    SecretLookup,
    authenticate,
    parse_request,
    verify_request,
)
from consortia.sdk.signing import SignatureFailure
from consortia.types.errors import SignatureError

__all__ = [
    "KeyRecord", "MemoryNonceStore", "NonceStore", "ParsedRequest", "SecretBox",
    "SecretLookup", "SignatureError", "SignatureFailure", "authenticate",
    "generate_access_key", "new_master_key", "parse_request", "verify_request",
]
