"""The transaction manager's configuration file (TOML), validated at start-up.

::

    [manager]   org_id, data_dir
    [keys]      files = [...]   passphrase_file        (X25519 key files, keys.py)
    [local]     host (loopback only), port, token_file (the node's bearer token)
    [peer]      host, port                              (mutual-TLS peer API)
    [tls]       keystore, name, passphrase_file         (certificate of role peer from
                                                         the organization's CA)
    [[trust]]   org_id, ca_cert (PEM), crl (optional DER)
    [directory] file                                    (signed static directory)
    [limits]    max_payload_bytes, max_recipients, send_timeout_s, peer_timeout_s

Relative paths resolve against the file's directory. Unknown keys are refused, the
local API must listen on a loopback address, and the token file must hold at least 32
characters: no insecure default starts.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from consortia.types.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManagerSection(_Strict):
    org_id: str = Field(min_length=1, max_length=64)
    data_dir: Path


class KeysSection(_Strict):
    files: list[Path] = Field(min_length=1, max_length=16)
    passphrase_file: Path


class LocalSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9080, ge=0, le=65535)
    token_file: Path

    @field_validator("host")
    @classmethod
    def _loopback(cls, v: str) -> str:
        if v != "localhost":
            try:
                if not ipaddress.ip_address(v).is_loopback:
                    raise ValueError
            except ValueError:
                raise ValueError("the node's API listens on loopback only") from None
        return v


class PeerSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9443, ge=0, le=65535)


class TlsSection(_Strict):
    keystore: Path
    name: str
    passphrase_file: Path


class TrustEntry(_Strict):
    org_id: str = Field(min_length=1, max_length=64)
    ca_cert: Path
    crl: Path | None = None


class DirectorySection(_Strict):
    file: Path


class LimitsSection(_Strict):
    max_payload_bytes: int = Field(default=1024 * 1024, ge=1, le=64 * 1024 * 1024)
    max_recipients: int = Field(default=64, ge=1, le=255)
    send_timeout_s: float = Field(default=10.0, gt=0, le=600)
    peer_timeout_s: float = Field(default=5.0, gt=0, le=120)


class PrivacySettings(_Strict):
    manager: ManagerSection
    keys: KeysSection
    local: LocalSection
    peer: PeerSection = PeerSection()
    tls: TlsSection
    trust: list[TrustEntry] = Field(min_length=1)
    directory: DirectorySection
    limits: LimitsSection = LimitsSection()

    @classmethod
    def load(cls, path: Path) -> PrivacySettings:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        try:
            s = cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        return s.resolved(path.parent)

    def resolved(self, base: Path) -> PrivacySettings:
        def r(p: Path) -> Path:
            return p if p.is_absolute() else (base / p).resolve()

        return self.model_copy(update={
            "manager": self.manager.model_copy(update={"data_dir": r(self.manager.data_dir)}),
            "keys": self.keys.model_copy(update={
                "files": [r(f) for f in self.keys.files],
                "passphrase_file": r(self.keys.passphrase_file)}),
            "local": self.local.model_copy(update={"token_file": r(self.local.token_file)}),
            "tls": self.tls.model_copy(update={
                "keystore": r(self.tls.keystore),
                "passphrase_file": r(self.tls.passphrase_file)}),
            "trust": [t.model_copy(update={"ca_cert": r(t.ca_cert),
                                           "crl": r(t.crl) if t.crl else None})
                      for t in self.trust],
            "directory": self.directory.model_copy(update={"file": r(self.directory.file)}),
        })


def read_secret(path: Path, what: str, *, min_len: int = 1) -> bytes:
    """A passphrase or token from a file, trailing newline dropped."""
    try:
        value = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc}") from exc
    if len(value) < min_len:
        raise ConfigError(f"the {what} in {path} is shorter than {min_len} characters")
    return value
