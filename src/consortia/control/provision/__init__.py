"""Provisioners: where a node runs and who keeps it running.

Owns: the ``Provisioner`` protocol the control plane drives (``base.py``: ``NodeSpec`` in,
``NodeState`` snapshots and ``StatusChange`` events out, ``NodeStatus``), and its
``local`` implementation (``local.py``): node processes on this machine, one supervising
thread each, restarted with jittered exponential backoff after a crash, FAILED in a
crash loop, adopted again after the control plane restarts (``policy.py`` holds the
timings); and the ``kubernetes`` one (``kubernetes.py``): a StatefulSet, Service, Secret
and volume claim per node, statuses read from the cluster (ADR 0014; import it from its
module: its client is an optional extra). Statuses, transitions, backoff and adoption:
``docs/spec/provisioning.md``.

A provisioner reaches a node only as a process, its files and its public HTTP API (the
health check): never the node engine's packages.

::

    from consortia.control.provision import LocalProvisioner, NodeSpec, NodeStatus
    with LocalProvisioner(state_dir) as prov:
        prov.create(NodeSpec("nd-1", config, data_dir, log_file, "http://127.0.0.1:7050"))
        prov.wait_for("nd-1", NodeStatus.AVAILABLE, timeout=60)
"""

from consortia.control.provision.base import (
    Health,
    NodeSpec,
    NodeState,
    NodeStatus,
    Provisioner,
    StatusChange,
    StatusObserver,
)
from consortia.control.provision.local import LocalProvisioner
from consortia.control.provision.policy import SupervisionPolicy

__all__ = [
    "Health", "LocalProvisioner", "NodeSpec", "NodeState", "NodeStatus", "Provisioner",
    "StatusChange", "StatusObserver", "SupervisionPolicy",
]
