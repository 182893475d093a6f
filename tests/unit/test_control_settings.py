"""Control-plane settings, the master key file, platform init and the rate limiter."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from consortia.control.auth import new_master_key
from consortia.control.http import create_app
from consortia.control.http.ratelimit import TokenBuckets
from consortia.control.services import Control, init_platform
from consortia.control.settings import (
    ControlSettings,
    RateLimit,
    create_master_key_file,
    load_master_key,
)
from consortia.sdk import SigningAuth
from consortia.types.errors import ConfigError, Conflict, InvalidRequest
from tests.control_helpers import ControlWorld, FakeClock, make_world


def test_the_master_key_file_is_made_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "master.key"
    key = create_master_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(path) == key and len(key) == 32
    with pytest.raises(ConfigError, match="already exists"):
        create_master_key_file(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_master_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    os.chmod(path, mode)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_master_key(path)


def test_bad_master_key_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_master_key(tmp_path / "missing.key")
    for content in ("not base64 at all!", base64.b64encode(b"short").decode(),
                    base64.b64encode(bytes(32)).decode()):
        path = tmp_path / "k"
        path.write_text(content)
        os.chmod(path, 0o600)
        with pytest.raises(ConfigError):
            load_master_key(path)
        path.unlink()


def test_settings_refuse_insecure_or_nonsense_values() -> None:
    url = "sqlite:///x.db"
    with pytest.raises(ConfigError):
        ControlSettings(database_url=url, master_key=bytes(32))
    with pytest.raises(ConfigError):
        ControlSettings(database_url="", master_key=new_master_key())
    with pytest.raises(ConfigError):
        ControlSettings(database_url=url, master_key=new_master_key(), session_ttl_seconds=1)
    with pytest.raises(ConfigError):
        RateLimit(per_second=0, burst=1)
    with pytest.raises(ConfigError):
        RateLimit(per_second=1, burst=0)
    assert "master_key" not in repr(ControlSettings(database_url=url,
                                                    master_key=new_master_key()))


def test_init_platform_creates_tenant_owner_key_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'control.sqlite3'}"
    key_file = tmp_path / "master.key"
    init = init_platform(url, key_file, tenant="acme", owner="alice",
                         owner_password="correct horse")
    assert init.master_key_created and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert init.credentials.access_key_id.startswith("CK")
    with pytest.raises(Conflict, match="initialized already"):
        init_platform(url, key_file, tenant="other", owner="bob")

    settings = ControlSettings.from_files(url, key_file)
    control = Control(settings)
    try:
        world = ControlWorld(settings, control, create_app(settings, control=control),
                             FakeClock())
        with world.client() as c:
            c.auth = SigningAuth(init.credentials)
            me = c.get("/v1/tenant").json()
            assert (me["tenant"]["name"], me["user"]["username"]) == ("acme", "alice")
            trail = c.get("/v1/audit").json()["items"]
        assert {i["action"] for i in trail} >= {"user.create", "access_key.create"}
        assert all(i["user_id"] is None for i in trail)  # platform actions: no acting user
        with pytest.raises(InvalidRequest):
            control.tenants.create("Not A Slug", "x")
        with pytest.raises(Conflict):
            control.tenants.create("acme", "x")
    finally:
        control.close()


def test_control_refuses_a_database_not_at_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    with pytest.raises(ConfigError, match="control init"):
        Control(ControlSettings(database_url=url, master_key=new_master_key()))


def test_token_buckets_refill_and_stay_bounded() -> None:
    clock = FakeClock(1_000.0)
    clock.TICK = 0.0
    buckets = TokenBuckets(RateLimit(per_second=2.0, burst=3), max_entries=2, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [None, None, None]
    assert buckets.take("a") == 1  # 1 token / 2 per s -> 0.5 s, rounded up
    clock.advance(0.5)
    assert buckets.take("a") is None
    assert buckets.take("a") == 1
    buckets.take("b")
    buckets.take("c")  # evicts a, the least recently used
    assert len(buckets) == 2
    assert buckets.take("a") is None  # back with a full bucket
    slow = TokenBuckets(RateLimit(per_second=0.1, burst=1), max_entries=10, clock=clock)
    assert slow.take("k") is None and slow.take("k") == 10


def test_a_wrong_master_key_is_a_500_not_a_leak(tmp_path: Path) -> None:
    world = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}")
    other = make_world(f"sqlite:///{tmp_path / 'control.sqlite3'}".replace(
        "control.sqlite3", "other.sqlite3"))
    try:
        # the same database opened with another master key cannot open the secrets
        settings = ControlSettings(database_url=world.settings.database_url,
                                   master_key=other.settings.master_key)
        control = Control(settings)
        wrong = ControlWorld(settings, control, create_app(settings, control=control),
                             world.clock)
        with wrong.client(world.creds("acme")) as c:
            r = c.get("/v1/tenant")
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "sealed_secret_unreadable"
        assert world.creds("acme").secret not in r.text
        control.close()
    finally:
        world.close()
        other.close()
