"""Ethereum key files: encrypted keystore JSON (Web3 Secret Storage v3), via eth-account.

An account's private key lives only in its key file, encrypted under a password (scrypt,
eth-account's default parameters); it never appears on a command line or in the
environment. The password comes from a file (``--password-file``), from
``$CONSORTIA_KEY_PASSWORD`` for scripts, or from a prompt. Files are named as geth names
them (``UTC--<time>--<address>``), so a geth or Foundry keystore directory is readable here
and the other way round. These are Ethereum accounts, not the X.509 identities of
``consortia identity`` / ``consortia ca``: the two stay apart.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from consortia.sdk.evm._errors import KeyFileError

DEFAULT_DIR = Path(".consortia/accounts")
PASSWORD_ENV = "CONSORTIA_KEY_PASSWORD"  # noqa: S105 - the variable's name, not a password


@dataclass(frozen=True)
class KeyFile:
    """A key file found on disk (read without its password)."""

    address: str
    """Checksummed address."""
    path: Path


def accounts_dir(value: Path | None = None) -> Path:
    """``value``, else ``$CONSORTIA_ACCOUNTS``, else ``.consortia/accounts``."""
    return value or Path(os.environ.get("CONSORTIA_ACCOUNTS", str(DEFAULT_DIR)))


def read_password(password_file: Path | None) -> str | None:
    """The password from ``password_file`` (its first line) or ``$CONSORTIA_KEY_PASSWORD``;
    ``None`` when neither is given (the CLI then prompts)."""
    if password_file is not None:
        try:
            lines = password_file.read_text().splitlines()
        except OSError as exc:
            raise KeyFileError(f"cannot read password file {password_file}: {exc.strerror}",
                               code="no_password") from exc
        return lines[0] if lines else ""
    return os.environ.get(PASSWORD_ENV)


def new_key(directory: Path, password: str) -> KeyFile:
    """Create a new account and write its encrypted key file (mode 0600) in ``directory``."""
    if not password:
        raise KeyFileError("refusing an empty password", code="no_password")
    account = Account.create()
    return _write(directory, account.address, Account.encrypt(account.key, password))


def import_key(directory: Path, private_key: str, password: str) -> KeyFile:
    """Encrypt an existing private key (hex) into a key file."""
    if not password:
        raise KeyFileError("refusing an empty password", code="no_password")
    try:
        account = Account.from_key(private_key.strip())
    except (ValueError, TypeError) as exc:
        raise KeyFileError("not a private key (32 bytes of hex)", code="bad_key_file") from exc
    return _write(directory, account.address, Account.encrypt(account.key, password))


def _write(directory: Path, address: str, doc: dict[str, Any]) -> KeyFile:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime())
    path = directory / f"UTC--{stamp}.{time.time_ns() % 1_000_000_000:09d}Z--" \
                       f"{address[2:].lower()}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    return KeyFile(address, path)


def list_keys(directory: Path) -> list[KeyFile]:
    """Every key file of ``directory`` (others are skipped), sorted by name (creation)."""
    found = []
    if directory.is_dir():
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            try:
                found.append(KeyFile(_address_of(path), path))
            except KeyFileError:
                continue
    return found


def _address_of(path: Path) -> str:
    try:
        doc = json.loads(path.read_text())
        return to_checksum_address("0x" + str(doc["address"]).removeprefix("0x"))
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path} is not a keystore key file", code="bad_key_file") from exc


def resolve_key(ref: str | Path, directory: Path | None = None) -> Path:
    """A key file by path, or by address (or address prefix) in the accounts directory."""
    path = Path(ref)
    if path.is_file():
        return path
    text = str(ref).lower().removeprefix("0x")
    matches = [k for k in list_keys(accounts_dir(directory))
               if text and k.address.lower().removeprefix("0x").startswith(text)]
    if len(matches) == 1:
        return matches[0].path
    raise KeyFileError(f"no key file {ref!r}" if not matches else
                       f"{ref!r} matches {len(matches)} key files: give more of the address",
                       code="bad_key_file")


def load_key(path: Path, password: str) -> LocalAccount:
    """Decrypt a key file; :class:`KeyFileError` ``wrong_password`` if it does not open."""
    _address_of(path)
    try:
        key = Account.decrypt(path.read_text(), password)
    except ValueError as exc:
        raise KeyFileError(f"wrong password for {path}", code="wrong_password") from exc
    account: LocalAccount = Account.from_key(key)
    return account
