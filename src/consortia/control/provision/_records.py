"""The local provisioner's state directory: what it runs, so a later instance can adopt it.

::

    <state_dir>/nodes/<node_id>/record.json   spec, wanted state, last status (rewritten on
                                               every transition, aside then renamed)
    <state_dir>/nodes/<node_id>/node.pid      PID of its process while it runs

A record file is data at the edge: it is validated on load and a bad one is reported,
not guessed at.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from consortia.control.provision.base import NodeSpec, NodeStatus
from consortia.types.errors import ConfigError

RECORD_VERSION = 1


class Wanted(StrEnum):
    """What the operator last asked for."""

    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"


@dataclass(frozen=True)
class Record:
    spec: NodeSpec
    wanted: Wanted
    status: NodeStatus
    reason: str | None
    restarts: int
    since: float
    remove_data: bool = False
    """With ``wanted`` DELETED: whether the deletion removes the data directory."""


class _SpecDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    node_id: str
    config: str
    data_dir: str
    log_file: str
    api_url: str
    resource_class: str = "small"
    """Absent from records written before it existed: those nodes were all small."""


class _RecordDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    spec: _SpecDoc
    wanted: Wanted
    status: NodeStatus
    reason: str | None
    restarts: int
    since: float
    remove_data: bool


class Records:
    """The records under ``<state_dir>/nodes``."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "nodes"

    def node_dir(self, node_id: str) -> Path:
        return self.root / node_id

    def pid_file(self, node_id: str) -> Path:
        return self.node_dir(node_id) / "node.pid"

    def save(self, rec: Record) -> None:
        d = self.node_dir(rec.spec.node_id)
        d.mkdir(parents=True, exist_ok=True)
        s = rec.spec
        doc = {"version": RECORD_VERSION,
               "spec": {"node_id": s.node_id, "config": str(s.config),
                        "data_dir": str(s.data_dir), "log_file": str(s.log_file),
                        "api_url": s.api_url, "resource_class": s.resource_class},
               "wanted": rec.wanted.value, "status": rec.status.value, "reason": rec.reason,
               "restarts": rec.restarts, "since": rec.since, "remove_data": rec.remove_data}
        tmp = d / "record.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, d / "record.json")

    def load_all(self) -> list[Record]:
        if not self.root.is_dir():
            return []
        return [self._load(d / "record.json") for d in sorted(self.root.iterdir())
                if (d / "record.json").is_file()]

    def _load(self, path: Path) -> Record:
        try:
            doc = _RecordDoc.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise ConfigError(f"provisioner record {path} is unreadable: {exc}") from exc
        if doc.version != RECORD_VERSION:
            raise ConfigError(f"provisioner record {path} has version {doc.version}; this "
                              f"release reads version {RECORD_VERSION}")
        s = doc.spec
        try:
            spec = NodeSpec(s.node_id, Path(s.config), Path(s.data_dir), Path(s.log_file),
                            s.api_url, s.resource_class)
        except ValueError as exc:
            raise ConfigError(f"provisioner record {path}: {exc}") from exc
        if path.parent.name != spec.node_id:
            raise ConfigError(f"provisioner record {path} names node {spec.node_id!r}")
        return Record(spec, doc.wanted, doc.status, doc.reason, doc.restarts, doc.since,
                      doc.remove_data)

    def remove(self, node_id: str) -> None:
        shutil.rmtree(self.node_dir(node_id), ignore_errors=True)
