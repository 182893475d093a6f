"""Where a control client finds its endpoint and access key: environment, then profile file.

A profile file is TOML, one table per profile, readable by its owner only (mode 0600, as
ssh wants of private keys; a group- or other-readable file is refused)::

    [default]
    endpoint = "http://127.0.0.1:7070"
    access_key_id = "CKJBSWY3DPEHPK3PXP"
    secret = "…"

``consortia up`` writes ``<data dir>/credentials`` (default ``.consortia/control``) on its
first start. ``load_profile`` resolves, first match wins:

1. ``CONSORTIA_ACCESS_KEY_ID`` and ``CONSORTIA_SECRET`` (with ``CONSORTIA_ENDPOINT``, or
   the endpoint of the profile file when one is found);
2. the file named by ``path``, else ``$CONSORTIA_CREDENTIALS``, else the first that exists
   of ``.consortia/control/credentials`` (the working directory's ``consortia up``) and
   ``~/.consortia/credentials``.

``CONSORTIA_ENDPOINT`` overrides the file's endpoint in every case.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from consortia.sdk.control._exceptions import CredentialsError
from consortia.sdk.signing import Credentials, SigningFormatError

DEFAULT_PROFILE = "default"
CREDENTIALS_MODE = 0o600
ENV_ENDPOINT = "CONSORTIA_ENDPOINT"
ENV_ACCESS_KEY_ID = "CONSORTIA_ACCESS_KEY_ID"
ENV_SECRET = "CONSORTIA_SECRET"  # noqa: S105 (the variable's name, not a secret)
ENV_CREDENTIALS_FILE = "CONSORTIA_CREDENTIALS"
UP_DATA_DIR = Path(".consortia/control")
"""``consortia up``'s default data directory (relative to the working directory)."""
CREDENTIALS_FILE = "credentials"


@dataclass(frozen=True, slots=True)
class Profile:
    """An endpoint and the access key that signs calls to it."""

    endpoint: str
    credentials: Credentials
    source: str
    """Where it was read: a file path or "environment" (for error messages)."""


def default_files(home: Path | None = None) -> list[Path]:
    """The profile files looked for when none is named, in order."""
    return [UP_DATA_DIR / CREDENTIALS_FILE,
            (home or Path.home()) / ".consortia" / CREDENTIALS_FILE]


def read_profiles(path: Path) -> dict[str, dict[str, str]]:
    """Every profile of ``path``; refuses a file its group or others can read or write."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CredentialsError(f"credentials file {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise CredentialsError(f"credentials file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise CredentialsError(f"credentials file {path} has mode "
                               f"{stat.S_IMODE(st.st_mode):04o}; it must be 0600 "
                               f"(chmod 600 {path})")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"credentials file {path} is not TOML: {exc}") from None
    out: dict[str, dict[str, str]] = {}
    for name, table in doc.items():
        if isinstance(table, dict):
            out[name] = {k: v for k, v in table.items() if isinstance(v, str)}
    return out


def _credentials(key_id: str | None, secret: str | None, source: str) -> Credentials:
    if not key_id or not secret:
        raise CredentialsError(f"{source}: give both access_key_id and secret")
    try:
        return Credentials(key_id, secret)
    except SigningFormatError as exc:
        raise CredentialsError(f"{source}: {exc}") from None


def load_profile(profile: str = DEFAULT_PROFILE, path: Path | None = None, *,
                 env: Mapping[str, str] | None = None, home: Path | None = None) -> Profile:
    """The endpoint and access key to use (resolution order: the module's docstring)."""
    env = os.environ if env is None else env
    file = path or (Path(env[ENV_CREDENTIALS_FILE]) if env.get(ENV_CREDENTIALS_FILE) else None)
    if file is None:
        file = next((f for f in default_files(home) if f.exists()), None)
    table: dict[str, str] = {}
    if file is not None:
        profiles = read_profiles(file)
        table = profiles.get(profile, {})
        if not table and not env.get(ENV_ACCESS_KEY_ID):
            raise CredentialsError(f"credentials file {file} has no profile [{profile}]; "
                                   f"it has {', '.join(sorted(profiles)) or 'none'}")
    endpoint = env.get(ENV_ENDPOINT) or table.get("endpoint")
    if env.get(ENV_ACCESS_KEY_ID) or env.get(ENV_SECRET):
        creds = _credentials(env.get(ENV_ACCESS_KEY_ID), env.get(ENV_SECRET),
                             f"{ENV_ACCESS_KEY_ID} / {ENV_SECRET}")
        source = "environment"
    elif table:
        creds = _credentials(table.get("access_key_id"), table.get("secret"),
                             f"{file} [{profile}]")
        source = str(file)
    else:
        looked = ", ".join(str(f) for f in default_files(home))
        raise CredentialsError(f"no control-plane credentials: set {ENV_ACCESS_KEY_ID}, "
                               f"{ENV_SECRET} and {ENV_ENDPOINT}, or run `consortia up` "
                               f"(looked for {looked})")
    if not endpoint:
        raise CredentialsError(f"no endpoint for the control plane: set {ENV_ENDPOINT} or "
                               f"`endpoint` in the profile [{profile}]")
    return Profile(endpoint.rstrip("/"), creds, source)


def write_profile(path: Path, endpoint: str, credentials: Credentials,
                  profile: str = DEFAULT_PROFILE) -> None:
    """Add or replace ``profile`` in ``path``, keeping its other profiles; the file is
    written whole to a temporary file of mode 0600 and renamed over the old one."""
    profiles = read_profiles(path) if path.exists() else {}
    profiles[profile] = {"endpoint": endpoint, "access_key_id": credentials.access_key_id,
                         "secret": credentials.secret}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, CREDENTIALS_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"# Consortia control-plane credentials: keep this file 0600.\n")
            f.write(tomli_w.dumps(profiles).encode())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, CREDENTIALS_MODE)  # whatever the umask did
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
