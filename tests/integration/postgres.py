"""A real PostgreSQL server for the tests, from Debian's package (``apt-get install postgresql``).

``PostgresServer.start()`` runs ``initdb`` into a fresh directory under /tmp and
``pg_ctl start`` on a free 127.0.0.1 port below 32000 (the ephemeral range is avoided, as
for nodes), with its unix socket in that directory, ``fsync`` off (a test database need
not survive power loss) and SCRAM password authentication for a superuser
``consortia`` with a random password. PostgreSQL refuses to run as root, so when the tests
run as root every server command runs as the ``postgres`` system user (``runuser``, or
``setpriv``), which owns the directory. ``create_database()`` gives each test an empty
database; ``stop()`` stops the server (``pg_ctl stop -m fast``, then SIGKILL) and removes
the directory.

The binaries are looked up in ``$CONSORTIA_PG_BINDIR``, then ``/usr/lib/postgresql/*/bin``
(newest major version first), then ``$PATH``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg

from tests.integration.helpers import free_port

REQUIRE_ENV = "CONSORTIA_REQUIRE_PG"
BINDIR_ENV = "CONSORTIA_PG_BINDIR"
SUPERUSER = "consortia"
SYSTEM_USER = "postgres"
_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_START_ATTEMPTS = 5
_TIMEOUT = 60


def required() -> bool:
    """Whether a missing PostgreSQL must fail the tests (CI sets CONSORTIA_REQUIRE_PG=1)."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    candidates: list[Path] = []
    if os.environ.get(BINDIR_ENV):
        candidates.append(Path(os.environ[BINDIR_ENV]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.replace(".", "").isdigit()]
        versions.sort(key=lambda p: [int(x) for x in p.name.split(".")], reverse=True)
        candidates += [v / "bin" for v in versions]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for c in candidates:
        if all(os.access(c / name, os.X_OK) for name in _PROGRAMS):
            return c
    return None


class PostgresError(RuntimeError):
    pass


class PostgresServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self._databases = 0
        self._as_user: list[str] = []
        uid = gid = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresError(f"running as root and there is no {SYSTEM_USER!r} user "
                                    "to run PostgreSQL as") from None
            uid, gid = entry.pw_uid, entry.pw_gid
            self._as_user = _drop_privileges_prefix()
        self.root = Path(tempfile.mkdtemp(prefix="consortia-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "postgres.log"
        self.socket_dir.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if uid is not None and gid is not None:
            for path in (self.root, self.socket_dir, pwfile):
                os.chown(path, uid, gid)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        self._run(["initdb", "-D", str(self.data), "-U", SUPERUSER,
                   f"--pwfile={self.root / 'pwfile'}", "--auth=scram-sha-256",
                   "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"])
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
            options = " ".join([
                f"-p {self.port}", f"-k {self.socket_dir}", "-c listen_addresses=127.0.0.1",
                "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
                "-c max_connections=100",
            ])
            try:
                self._run(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                           "-t", str(_TIMEOUT), "-o", options, "start"])
                return self
            except PostgresError:
                if "could not bind" not in self.log_text() and \
                        "already in use" not in self.log_text():
                    raise
        raise PostgresError(f"no free port after {_START_ATTEMPTS} attempts\n{self.log_text()}")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                try:
                    self._run(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w",
                               "-t", str(_TIMEOUT), "stop"])
                except PostgresError:
                    self._kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)

    # --- databases -------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return (f"postgresql+psycopg://{SUPERUSER}:{self.password}"
                f"@127.0.0.1:{self.port}/{database}")

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        self._databases += 1
        name = f"test_{self._databases}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                             password=self.password, dbname="postgres", autocommit=True,
                             connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, not input
        return self.url(name)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- running the server's programs -----------------------------------------------------

    def _run(self, argv: Sequence[str]) -> None:
        command = [*self._as_user, str(self.bindir / argv[0]), *argv[1:]]
        proc = subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                              timeout=_TIMEOUT + 30, check=False)
        if proc.returncode != 0:
            raise PostgresError(f"{' '.join(command)} exited {proc.returncode}\n"
                                f"{proc.stdout}{proc.stderr}\n{self.log_text()}")


def _drop_privileges_prefix() -> list[str]:
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", SYSTEM_USER, "--"]
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--init-groups"]
    raise PostgresError("running as root and neither runuser nor setpriv is available "
                        "to run PostgreSQL as an unprivileged user")
