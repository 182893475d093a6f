"""One node, one thread: the supervisor that starts, watches, restarts and stops it.

Everything that touches the node's process happens on this thread: the provisioner's
methods queue a command and wait for its result, so no two actions on one node ever
interleave and a restart timer cannot fire in the middle of a stop. Between commands the
thread polls: has the process exited (→ crash handling), is the log too big (→ rotate),
does ``/healthz`` answer (→ status). Status changes are saved to the node's record and
handed to the provisioner's observers, from this thread, outside any lock.

Processes are started as ``python -m consortia.node --config <node.toml>`` in their own
session (a signal to the control plane's process group does not reach them, and they
outlive it), standard output and error appended to the node's log file.
"""

from __future__ import annotations

import enum
import logging
import os
import queue
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from consortia.control.provision import _logs
from consortia.control.provision._records import Record, Records, Wanted
from consortia.control.provision.base import Health, NodeState, NodeStatus, StatusChange
from consortia.control.provision.policy import CrashHistory, SupervisionPolicy, backoff_delay
from consortia.sdk import processes
from consortia.types.errors import Conflict

log = logging.getLogger("consortia.control.provision")


class Kind(enum.Enum):
    BEGIN = "begin"              # first action of the thread: adopt, spawn or resume
    START = "start"
    STOP = "stop"
    RECONFIGURE = "reconfigure"
    DELETE = "delete"
    DETACH = "detach"            # stop supervising, leave the process running


@dataclass
class _Command:
    kind: Kind
    done: Future[NodeState] = field(default_factory=Future)
    config: str | None = None
    remove_data: bool = False


@dataclass
class _Run:
    """The node's current process: started here (``popen``) or adopted (``popen`` None)."""

    pid: int
    popen: subprocess.Popen[bytes] | None
    started: float
    """Monotonic time it was started or adopted."""
    log_offset: int
    """Where its output begins in the log."""

    def exit_status(self, config: Path) -> tuple[bool, int | None]:
        """(exited?, its status when known: only a child's is)."""
        if self.popen is not None:
            code = self.popen.poll()
            return code is not None, code
        return not processes.is_node_process(self.pid, config), None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exited (status unknown: it was adopted, not started, by this provisioner)"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _with_output(text: str, lines: list[str]) -> str:
    return text + ("; last output:\n" + "\n".join(lines) if lines else "; no output")


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (aside, fsynced, renamed), keeping its mode."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o640
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class NodeSupervisor:
    """The supervising thread of one node and the state it owns."""

    def __init__(self, record: Record, *, fresh: bool, policy: SupervisionPolicy,
                 records: Records, rng: random.Random,
                 on_change: Callable[[StatusChange | None], None]) -> None:
        self.spec = record.spec
        self._fresh = fresh
        """Created just now (not recovered from a record of an earlier provisioner)."""
        self._policy = policy
        self._records = records
        self._rng = rng
        self._on_change = on_change
        self._lock = threading.Lock()
        # Guarded by _lock (read by other threads through state()):
        self._status = record.status
        self._reason = record.reason
        self._since = record.since
        self._restarts = record.restarts
        self._health: Health | None = None
        self._pid: int | None = None
        self._accepting = True
        # Owned by the thread:
        self._wanted = record.wanted
        self._remove_data = record.remove_data
        self._run: _Run | None = None
        self._restart_at: float | None = None
        self._next_poll = 0.0
        self._failures = 0
        self._crashes = CrashHistory(policy.crash_window)
        self._finished = False
        self._http: httpx.HTTPTransport | None = None
        self._timeout = httpx.Timeout(policy.health_timeout).as_dict()
        self._queue: queue.Queue[_Command] = queue.Queue()
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name=f"provision-{self.spec.node_id}")

    # -- called from other threads ------------------------------------------------------

    def start_thread(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def submit(self, kind: Kind, *, config: str | None = None,
               remove_data: bool = False) -> Future[NodeState]:
        cmd = _Command(kind, config=config, remove_data=remove_data)
        with self._lock:
            if not self._accepting:
                raise Conflict(f"node {self.spec.node_id} is {self._status.value.lower()}; "
                               "nothing supervises it any more")
            self._queue.put(cmd)
        return cmd.done

    def state(self) -> NodeState:
        with self._lock:
            return NodeState(self.spec, self._status, self._reason, self._pid, self._restarts,
                             self._since, self._health)

    @property
    def status(self) -> NodeStatus:
        with self._lock:
            return self._status

    # -- the thread ---------------------------------------------------------------------

    def _main(self) -> None:
        try:
            # A bare transport, not a Client: no proxy from the environment, and none of
            # the Client's INFO line per request (one per node per poll). No connection
            # reuse: a restarted node must not meet a stale one.
            with httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0),
                                     retries=0) as http:
                self._http = http
                while not self._finished:
                    cmd = self._next_command()
                    if cmd is None:
                        try:
                            self._tick()
                        except OSError:  # a full disk, a lost directory: try again later
                            log.exception("node %s: supervision check failed",
                                          self.spec.node_id)
                        continue
                    try:
                        self._handle(cmd)
                    except Exception as exc:
                        log.exception("node %s: %s failed", self.spec.node_id, cmd.kind.value)
                        cmd.done.set_exception(exc)
                    else:
                        cmd.done.set_result(self.state())
        except BaseException as exc:
            log.critical("node %s: its supervisor failed; the node is no longer supervised",
                         self.spec.node_id, exc_info=True)
            with self._lock:
                self._reason = (f"its supervisor failed ({exc!r}); the node is no longer "
                                "supervised until the provisioner is opened again")
            self._close_queue(exc)
            raise
        self._close_queue(Conflict(f"node {self.spec.node_id} is no longer supervised"))

    def _close_queue(self, exc: BaseException) -> None:
        with self._lock:
            self._accepting = False
        while True:
            try:
                cmd = self._queue.get_nowait()
            except queue.Empty:
                return
            if not cmd.done.done():
                cmd.done.set_exception(exc)

    def _next_command(self) -> _Command | None:
        now = time.monotonic()
        if self._run is not None:
            timeout: float | None = max(0.0, self._next_poll - now)
        elif self._restart_at is not None:
            timeout = max(0.0, self._restart_at - now)
        else:
            timeout = None                   # nothing to watch: wait for a command
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _handle(self, cmd: _Command) -> None:
        match cmd.kind:
            case Kind.BEGIN:
                self._begin()
            case Kind.START:
                self._start()
            case Kind.STOP:
                self._stop()
            case Kind.RECONFIGURE:
                assert cmd.config is not None
                self._reconfigure(cmd.config)
            case Kind.DELETE:
                self._delete(cmd.remove_data)
            case Kind.DETACH:
                self._detach()

    # -- commands -----------------------------------------------------------------------

    def _begin(self) -> None:
        """Take charge: a fresh node starts (or is adopted if its process already runs); a
        recovered one is adopted, resumed or left as its record says."""
        pid = processes.read_pid_file(self._pid_file, self.spec.config)
        if self._wanted is Wanted.DELETED:
            self._delete(self._remove_data)
        elif self._wanted is Wanted.STOPPED:
            if pid is not None:
                self._adopt(pid)
                self._kill_run()
            self._set(NodeStatus.STOPPED, None)
        elif pid is not None:
            self._adopt(pid)
            if self._fresh:
                self._set(NodeStatus.CREATING, "adopted its running process", first=True)
        elif self._fresh:
            self._set(NodeStatus.CREATING, None, first=True)
            self._spawn("created")
        elif self._status is not NodeStatus.FAILED:
            self._crashed(None, "exited while no provisioner supervised it")

    def _start(self) -> None:
        self._wanted = Wanted.RUNNING
        if self._run is not None:
            self._save()
            return
        self._crashes.clear()
        self._restart_at = None
        self._set(NodeStatus.CREATING, None)
        self._spawn("started")

    def _stop(self) -> None:
        self._wanted = Wanted.STOPPED
        self._restart_at = None
        if self._run is not None:
            self._kill_run()
        self._set(NodeStatus.STOPPED, None)

    def _reconfigure(self, text: str) -> None:
        _write_atomically(self.spec.config, text)
        log.info("node %s: new configuration written to %s", self.spec.node_id,
                 self.spec.config)
        if self._wanted is Wanted.STOPPED:
            self._set(NodeStatus.STOPPED, "reconfigured; starts on the new configuration")
            return
        if self._run is not None:
            self._kill_run()
        self._crashes.clear()
        self._restart_at = None
        self._set(NodeStatus.CREATING, "restarted on a new configuration")
        self._spawn("restart on a new configuration")

    def _delete(self, remove_data: bool) -> None:
        self._wanted = Wanted.DELETED
        self._remove_data = remove_data
        self._restart_at = None
        self._set(NodeStatus.DELETING, None)
        if self._run is not None:
            self._kill_run()
        else:
            pid = processes.read_pid_file(self._pid_file, self.spec.config)
            if pid is not None:          # a recovered deletion whose node still runs
                processes.terminate(pid, self.spec.config, self._policy.stop_grace)
        reason = None
        if remove_data and self.spec.data_dir.exists():
            try:
                shutil.rmtree(self.spec.data_dir)
            except OSError as exc:
                reason = f"its data directory could not be removed: {exc}"
                log.error("node %s: %s", self.spec.node_id, reason)
        self._records.remove(self.spec.node_id)
        self._set(NodeStatus.DELETED, reason)
        self._finished = True

    def _detach(self) -> None:
        # The process lives on in its own session, its PID file kept for the next adoption.
        self._save()
        self._finished = True

    # -- the process --------------------------------------------------------------------

    @property
    def _pid_file(self) -> Path:
        return self._records.pid_file(self.spec.node_id)

    def _spawn(self, why: str) -> None:
        spec, p = self.spec, self._policy
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            _logs.rotate_closed(spec.log_file, p.log_max_bytes, p.log_backups)
            fd, offset = _logs.open_for_child(spec.log_file,
                                              f"starting {spec.node_id} ({why})")
        except OSError as exc:
            self._crashed(None, f"could not be started: its log {spec.log_file}: {exc}")
            return
        try:
            popen = subprocess.Popen(processes.node_command(spec.config),
                                     stdin=subprocess.DEVNULL, stdout=fd,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=spec.config.parent, env=env)
        except OSError as exc:
            self._crashed(None, f"could not be started: {exc}")
            return
        finally:
            os.close(fd)
        now = time.monotonic()
        self._run = _Run(popen.pid, popen, now, offset)   # tracked before anything can fail
        self._next_poll = now + self._policy.poll_interval
        self._failures = 0
        self._set_pid(popen.pid)
        processes.write_pid_file(self._pid_file, popen.pid)
        log.info("node %s: started, pid %d (%s)", spec.node_id, popen.pid, why)

    def _adopt(self, pid: int) -> None:
        now = time.monotonic()
        self._run = _Run(pid, None, now, _logs.size(self.spec.log_file))
        self._next_poll = now            # check it at once
        self._failures = 0
        self._set_pid(pid)
        log.info("node %s: adopted its running process, pid %d", self.spec.node_id, pid)

    def _kill_run(self) -> None:
        """SIGTERM the process, SIGKILL after the grace period; wait until it is gone."""
        run = self._run
        assert run is not None
        grace = self._policy.stop_grace
        if run.popen is not None:
            if run.popen.poll() is None:
                run.popen.terminate()
                try:
                    run.popen.wait(grace)
                except subprocess.TimeoutExpired:
                    log.warning("node %s: still running %g s after SIGTERM; killing it",
                                self.spec.node_id, grace)
                    run.popen.kill()
                    run.popen.wait(grace)
        elif not processes.terminate(run.pid, self.spec.config, grace):
            raise RuntimeError(f"node {self.spec.node_id}: pid {run.pid} survived SIGKILL")
        self._forget_run()

    def _forget_run(self) -> None:
        """The process is gone: no PID any more. Not an observable change on its own — the
        caller's next status (STOPPED, a crash's) is, so no snapshot shows a node AVAILABLE
        without a process."""
        self._run = None
        processes.remove_pid_file(self._pid_file)
        with self._lock:
            self._pid = None

    # -- watching -----------------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        run = self._run
        if run is None:
            if self._restart_at is not None and now >= self._restart_at:
                self._restart_at = None
                with self._lock:
                    self._restarts += 1
                    n = self._restarts
                self._spawn(f"restart {n} after a crash")
                self._save()
            return
        self._next_poll = now + self._policy.poll_interval
        exited, code = run.exit_status(self.spec.config)
        if exited:
            self._forget_run()
            self._crashed(run, _describe_exit(code))
            return
        p = self._policy
        if _logs.rotate_open(self.spec.log_file, p.log_max_bytes, p.log_backups):
            run.log_offset = 0
        self._on_health(run, self._probe())

    def _probe(self) -> Health:
        assert self._http is not None
        url = f"{self.spec.api_url.rstrip('/')}/healthz"
        request = httpx.Request("GET", url, extensions={"timeout": self._timeout})
        try:
            r = self._http.handle_request(request)
            try:
                r.read()
            finally:
                r.close()
        except httpx.HTTPError as exc:
            return Health(False, time.time(), f"{type(exc).__name__}: {exc}")
        try:
            doc = r.json()
        except ValueError:
            doc = None
        height = doc.get("height") if isinstance(doc, dict) else None
        height = height if isinstance(height, int) else None
        if r.status_code == 200:
            return Health(True, time.time(), "ok", height)
        said = doc.get("status") if isinstance(doc, dict) else None
        return Health(False, time.time(), f"HTTP {r.status_code}" + (f" {said}" if said else ""),
                      height)

    def _on_health(self, run: _Run, h: Health) -> None:
        self._set_health(h)
        status = self.status
        if h.ok:
            self._failures = 0
            if status is not NodeStatus.AVAILABLE:  # CREATING, UNHEALTHY; FAILED adopted
                self._set(NodeStatus.AVAILABLE, None)
            return
        self._failures += 1
        if status is NodeStatus.CREATING:
            waited = time.monotonic() - run.started
            if waited >= self._policy.start_timeout:
                self._kill_run()
                self._crashed(run, f"did not answer its health check within "
                                   f"{self._policy.start_timeout:g} s ({h.detail})")
        elif status is NodeStatus.AVAILABLE and self._failures >= self._policy.unhealthy_after:
            self._set(NodeStatus.UNHEALTHY,
                      f"{self._failures} health checks failed in a row: {h.detail}")

    def _crashed(self, run: _Run | None, what: str) -> None:
        """The process is gone without being asked to: restart it after a backoff, or give
        up (FAILED) when this is one crash too many within the window."""
        p = self._policy
        lines = [] if run is None else _logs.tail(self.spec.log_file, run.log_offset,
                                                  p.tail_lines)
        n = self._crashes.record(time.monotonic())
        log.warning("node %s: %s (crash %d within %g s)", self.spec.node_id, what, n,
                    p.crash_window)
        if n >= p.crash_limit:
            self._set(NodeStatus.FAILED, _with_output(
                f"crash loop: {n} crashes within {p.crash_window:g} s, the last: {what}",
                lines))
            return
        delay = backoff_delay(p, n, self._rng)
        self._restart_at = time.monotonic() + delay
        status = (NodeStatus.CREATING if self.status is NodeStatus.CREATING
                  else NodeStatus.UNHEALTHY)
        self._set(status, _with_output(f"{what}; restarting in {delay:.3g} s", lines))

    # -- state --------------------------------------------------------------------------

    def _set_pid(self, pid: int | None) -> None:
        with self._lock:
            self._pid = pid
        self._on_change(None)

    def _set_health(self, health: Health) -> None:
        with self._lock:
            self._health = health
        self._on_change(None)

    def _set(self, status: NodeStatus, reason: str | None, *, first: bool = False) -> None:
        now = time.time()
        with self._lock:
            previous = None if first else self._status
            changed = first or previous is not status
            self._status, self._reason = status, reason
            if changed:
                self._since = now
            restarts = self._restarts
        if status is not NodeStatus.DELETED:
            self._save()
        if changed:
            log.info("node %s: %s → %s%s", self.spec.node_id,
                     previous.value if previous else "-", status.value,
                     f" ({reason.splitlines()[0]})" if reason else "")
        self._on_change(StatusChange(self.spec.node_id, previous, status, reason, now, restarts)
                        if changed else None)

    def _save(self) -> None:
        with self._lock:
            rec = Record(self.spec, self._wanted, self._status, self._reason, self._restarts,
                         self._since, self._remove_data)
        self._records.save(rec)

