"""The control plane's settings, and the master key file they point at.

::

    key = load_master_key(Path("/etc/consortia/master.key"))     # mode 0600, or refused
    settings = ControlSettings(database_url="sqlite:///var/consortia/control.sqlite3",
                               master_key=key)
    app = consortia.control.http.create_app(settings)

There is no default master key: it seals every access-key secret (ADR 0007), so it is
generated once (``create_master_key_file``, by ``consortia.control.services.init_platform``
on first init) and read from a file only its owner can read. Every field validates itself
when the settings are built; a bad value is a ``ConfigError`` at start-up, not a surprise
later.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consortia.control.auth.keys import SecretBox, new_master_key
from consortia.control.provision.kubernetes import KubernetesSettings
from consortia.sdk.signing import WINDOW_SECONDS
from consortia.types.errors import ConfigError

MASTER_KEY_MODE = 0o600


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``burst`` calls at once, refilled at ``per_second`` calls a second."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ConfigError("a rate limit's per_second must be positive")
        if self.burst < 1:
            raise ConfigError("a rate limit's burst must be at least 1")


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """Everything ``create_app`` needs. ``clock`` exists for tests; leave it alone otherwise."""

    database_url: str
    """``sqlite:///path`` (default deployment) or ``postgresql://…``."""
    master_key: bytes = field(repr=False)
    """32 random bytes sealing access-key secrets (``load_master_key``)."""
    previous_master_keys: tuple[bytes, ...] = field(default=(), repr=False)
    """Older master keys that still open what they sealed (rotation)."""
    rate_limit: RateLimit = RateLimit(per_second=10.0, burst=40)
    """Per access key (or per console session's user)."""
    login_rate_limit: RateLimit = RateLimit(per_second=0.2, burst=10)
    """Per source address, for ``POST /v1/session`` (each attempt costs an Argon2id hash)."""
    rate_limit_max_entries: int = 10_000
    """Buckets kept in memory; the least recently used is dropped beyond this."""
    session_ttl_seconds: int = 8 * 3600
    """A console session ends this long after login."""
    secure_cookies: bool | None = None
    """Mark the session cookie ``Secure``: None means "when the request came over https"."""
    max_body_bytes: int = 1 << 20
    """Larger request bodies are refused with 413 ``too_large``."""
    signature_window_seconds: int = WINDOW_SECONDS
    """The replay window of signed requests (docs/spec/api-signing.md: 900 s)."""
    clock: Callable[[], float] = time.time
    """Seconds since the epoch: signature freshness, sessions, audit times, rate limits."""
    data_dir: Path | None = None
    """Where networks' files live (``networks/<network id>/``: genesis, one directory per
    node with its configuration, keystore and data) and the local provisioner's state
    (``provisioner/``). None: the control plane runs no chains (creating one is 503
    ``unavailable``)."""
    node_host: str = "127.0.0.1"
    """The address node APIs and p2p transports listen on (and are reached at)."""
    node_ports: tuple[int, int] = (20_000, 32_000)
    """Ports given to nodes, ``[first, last)``: below Linux's ephemeral range (32768+), where
    an outgoing connection could take a port between its choice and its use."""
    chain_timeout_seconds: float = 30.0
    """How long a configuration change (adding or removing a validator) may take to commit."""
    external_poll_seconds: float = 10.0
    """How often the health of external nodes (run by members from join bundles) is polled
    at their ``/healthz``; 0 polls never (their statuses then stay as they are)."""
    external_probe_timeout_seconds: float = 5.0
    """One external node's health probe gives up after this long."""
    provisioner: str = "local"
    """Where nodes run: ``local`` (processes on this machine, state under
    ``data_dir/provisioner``) or ``kubernetes`` (StatefulSets in a cluster, ``kubernetes``
    says which; ADR 0014)."""
    kubernetes: KubernetesSettings | None = None
    """The cluster, namespace, image and storage class of the ``kubernetes`` provisioner;
    required with it (with a kubeconfig), refused without it."""

    def __post_init__(self) -> None:
        if not self.database_url:
            raise ConfigError("the control plane needs a database_url")
        try:
            SecretBox(self.master_key, previous=self.previous_master_keys)
        except ValueError as exc:
            raise ConfigError(f"master key refused: {exc}") from None
        if self.rate_limit_max_entries < 1:
            raise ConfigError("rate_limit_max_entries must be at least 1")
        if not 60 <= self.session_ttl_seconds <= 30 * 86_400:
            raise ConfigError("session_ttl_seconds must be between 60 s and 30 days")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")
        if not 1 <= self.signature_window_seconds <= 3600:
            raise ConfigError("signature_window_seconds must be between 1 and 3600")
        first, last = self.node_ports
        if not 1 <= first < last <= 65536 or last - first < 2:
            raise ConfigError(f"node_ports {self.node_ports}: give [first, last) within "
                              "1..65536, at least two ports")
        if not self.node_host:
            raise ConfigError("node_host must name an address")
        if not 1 <= self.chain_timeout_seconds <= 600:
            raise ConfigError("chain_timeout_seconds must be between 1 and 600")
        if not (self.external_poll_seconds == 0 or 0.1 <= self.external_poll_seconds <= 3600):
            raise ConfigError("external_poll_seconds must be 0 or between 0.1 and 3600")
        if not 0.1 <= self.external_probe_timeout_seconds <= 60:
            raise ConfigError("external_probe_timeout_seconds must be between 0.1 and 60")
        if self.provisioner not in ("local", "kubernetes"):
            raise ConfigError(f"provisioner {self.provisioner!r} is not local or kubernetes")
        if self.provisioner == "kubernetes" and (self.kubernetes is None
                                                 or self.kubernetes.kubeconfig is None):
            raise ConfigError("the kubernetes provisioner needs kubernetes settings with a "
                              "kubeconfig (and the node image: there is no default)")
        if self.provisioner == "local" and self.kubernetes is not None:
            raise ConfigError("kubernetes settings are given but the provisioner is local: "
                              "set provisioner='kubernetes' or drop them")

    @classmethod
    def from_files(cls, database_url: str, master_key_file: Path,
                   **options: object) -> ControlSettings:
        """Settings whose master key is read (and checked) from ``master_key_file``."""
        return cls(database_url=database_url, master_key=load_master_key(master_key_file),
                   **options)  # type: ignore[arg-type]


def load_master_key(path: Path) -> bytes:
    """The 32-byte master key in ``path`` (base64, one line), refusing a readable file.

    The file must be a regular file that neither its group nor others can read or write
    (mode 0600 or stricter), as ssh does for private keys.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"master key file {path} does not exist; "
                          "create it with consortia control init") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"master key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ConfigError(f"master key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
                          f"it must be {MASTER_KEY_MODE:04o} (chmod 600 {path})")
    text = path.read_text(encoding="ascii").strip()
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"master key file {path} does not hold base64") from None
    try:
        SecretBox(key)
    except ValueError as exc:
        raise ConfigError(f"master key file {path}: {exc}") from None
    return key


def create_master_key_file(path: Path) -> bytes:
    """Generate a master key into a new file of mode 0600; refuses to overwrite one."""
    key = new_master_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MASTER_KEY_MODE)
    except FileExistsError:
        raise ConfigError(f"master key file {path} already exists") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(base64.b64encode(key).decode("ascii") + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, MASTER_KEY_MODE)  # whatever the umask did
    return key
