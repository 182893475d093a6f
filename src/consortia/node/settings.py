"""Node configuration file (TOML), validated at start-up.

Relative paths are resolved against the file's directory. There is no default
passphrase: the node's key is opened with a passphrase read from a file
(mode 0600 recommended) or from an environment variable.

``[node] role`` is ``validator`` (the default: orders blocks, solo or with ``[p2p]``) or
``peer`` (follows validators through their public API, ``[follow]``; ADR 0015).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from consortia.types.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSection(_Strict):
    id: str = Field(min_length=1, max_length=64)
    data_dir: Path
    genesis: Path
    role: Literal["validator", "peer"] = "validator"
    """A validator takes part in ordering; a peer holds the ledger, serves reads and
    forwards transactions, following the validators of ``[follow]``."""


class ApiSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=7050, ge=0, le=65535)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_json_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Parsed JSON costs up to ~40 times its size in Python objects, so JSON bodies are
    capped well below raw ones and parsed at most two at a time."""
    max_batch: int = Field(default=10_000, ge=1)


class IdentitySection(_Strict):
    keystore: Path
    name: str
    passphrase_file: Path | None = None
    passphrase_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> IdentitySection:
        if (self.passphrase_file is None) == (self.passphrase_env is None):
            raise ValueError("set exactly one of passphrase_file or passphrase_env")
        return self


class PoolSection(_Strict):
    max_txs: int = Field(default=200_000, ge=1)
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    verify_threads: int = Field(default=2, ge=1, le=64)


class P2PSection(_Strict):
    """Node-to-node transport of a multi-validator chain (raft, pbft); absent for solo."""

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    peers: dict[str, str] = Field(default_factory=dict)
    """Validator id → "host:port" of every other validator."""

    @model_validator(mode="after")
    def _addresses(self) -> P2PSection:
        for peer, addr in self.peers.items():
            host, sep, port = addr.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"peer {peer}: address {addr!r} is not host:port")
        return self


class ConsensusSection(_Strict):
    """Tuning of a multi-validator protocol; the defaults suit most networks."""

    retain_blocks: int | None = Field(default=None, ge=1, le=1_000_000)
    """Committed blocks kept in memory (pbft) or in the log (raft) for validators that lag;
    one further behind catches up from peers' ledgers. None: the protocol's default."""
    timeout_ms: int | None = Field(default=None, ge=50, le=600_000)
    """pbft's view-change timeout, raft's election timeout: longer than a block takes to
    validate. None: the protocol's default (300 ms), 2,000 ms on quorum chains."""


class FollowSection(_Strict):
    """How a peer follows the chain: the validators' HTTP APIs it syncs blocks from and
    forwards transactions to, tried in order, the next one when one fails."""

    validators: list[str] = Field(min_length=1, max_length=64)
    """Base URLs of validators' APIs, e.g. ``http://127.0.0.1:7050``."""
    poll_wait_ms: int = Field(default=5_000, ge=0, le=60_000)
    """How long a validator may hold a sync request open waiting for a new block."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """Timeout of one request to a validator, beyond ``poll_wait_ms``."""
    batch_blocks: int = Field(default=64, ge=1, le=1_000)
    """Blocks asked for in one sync request."""
    retry_ms: int = Field(default=500, ge=10, le=60_000)
    """Pause before asking the next validator after a failure."""

    @model_validator(mode="after")
    def _urls(self) -> FollowSection:
        seen: set[str] = set()
        for url in self.validators:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname \
                    or parts.query or parts.fragment or parts.path not in ("", "/"):
                raise ValueError(f"validator URL {url!r} is not http(s)://host:port")
            try:
                parts.port  # noqa: B018 - raises on a port out of range
            except ValueError:
                raise ValueError(f"validator URL {url!r} has an invalid port") from None
            if url.rstrip("/") in seen:
                raise ValueError(f"validator URL {url!r} is listed twice")
            seen.add(url.rstrip("/"))
        return self

    def urls(self) -> list[str]:
        return [u.rstrip("/") for u in self.validators]


class PrivacySection(_Strict):
    """The member's private transaction manager (quorum chains, ADR 0022/0027): its local
    API and the bearer token file the manager also reads."""

    url: str = Field(pattern=r"^https?://[^/?#]+/?$")
    token_file: Path
    timeout_s: float = Field(default=15.0, gt=0, le=120)
    """Timeout of one call to the manager (a payload delivery retries within it)."""

    def token(self, base: Path) -> str:
        path = self.token_file if self.token_file.is_absolute() else base / self.token_file
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the transaction manager token {path}: {exc}"
                              ) from exc
        if len(value) < 32:
            raise ConfigError(f"the transaction manager token in {path} is shorter than 32 "
                              "characters")
        return value


class LogSection(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"


class NodeSettings(_Strict):
    node: NodeSection
    api: ApiSection = ApiSection()
    identity: IdentitySection
    pool: PoolSection = PoolSection()
    p2p: P2PSection | None = None
    consensus: ConsensusSection = ConsensusSection()
    follow: FollowSection | None = None
    privacy: PrivacySection | None = None
    log: LogSection = LogSection()
    base_dir: Path = Path(".")

    @model_validator(mode="after")
    def _role(self) -> NodeSettings:
        if self.node.role == "peer":
            if self.follow is None:
                raise ValueError("a peer needs a [follow] section naming validators' APIs")
            if self.p2p is not None:
                raise ValueError("a peer takes no part in consensus: remove [p2p]")
        elif self.follow is not None:
            raise ValueError("[follow] is for peers: set [node] role = \"peer\"")
        return self

    @property
    def is_peer(self) -> bool:
        return self.node.role == "peer"

    def resolve(self, p: Path) -> Path:
        return p if p.is_absolute() else (self.base_dir / p)

    def passphrase(self) -> bytes:
        ident = self.identity
        if ident.passphrase_env is not None:
            value = os.environ.get(ident.passphrase_env)
            if not value:
                raise ConfigError(f"environment variable {ident.passphrase_env} is not set")
            return value.encode()
        assert ident.passphrase_file is not None
        path = self.resolve(ident.passphrase_file)
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read passphrase file {path}: {exc}") from exc
        if not value:
            raise ConfigError(f"passphrase file {path} is empty")
        return value.encode()

    @classmethod
    def load(cls, path: Path) -> NodeSettings:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read node config {path}: {exc}") from exc
        raw["base_dir"] = str(path.resolve().parent)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"node config {path} is invalid:\n{exc}") from exc
