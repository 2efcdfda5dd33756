"""The audit trail: append-only, hash-chained decision records in SQLite (WAL), with signed checkpoints.

Every decision that passes the choke point (allowed, denied, proposed,
approved and executed, failed) becomes one record holding the evidence,
confidence, alternatives considered, the chosen action, the gate's verdict and
rule with its figures, who approved, the execution result and the cost impact.

Chain: ``hash_n = sha256(hash_{n-1} + "\\n" + body_n)`` where ``body_n`` is the
record's canonical JSON (which includes ``seq``); the first record links to 64
zeros.  A ``meta`` row keeps the head (last seq and hash) so a removed tail is
detected too.  Triggers refuse UPDATE and DELETE on records.  Every indexed
column (``at``, ``engine``, ``kind``, ``target``, ``decision``, ``rule``,
``outcome``, ``cost``) must equal the hashed body's field.

**Signed checkpoints.**  The chain alone does not stop someone who can write
the file: they can edit a record and recompute every hash after it.  So the
writer holds an Ed25519 key that lives outside the database (default
``$ZEROOPS_AUDIT_KEY`` or ``~/.config/zeroops/audit-ed25519.key``, mode 0600,
created on first use, public half in ``<key>.pub``) and, after every commit and
at close, signs a checkpoint ``(trail id, seq, record count, chain hash, time)``
into an append-only log outside the database, ``<db>.checkpoints``.  The trail
id is random, made when the trail is created and kept in ``meta``.
:func:`verify` needs only the public key: a rewritten, truncated, wiped or
swapped database no longer matches the signed checkpoints.  Records committed
after the last checkpoint (the writer died between the commit and the
signature) are verified by the chain only, and reported as such.

**Committed** means: the record's transaction has COMMITted to the database
file (``synchronous=FULL`` by default, so it survives a process kill and, on
honest disks, power loss).  :class:`AuditLog` groups records: a record is
committed when ``flush()`` returns, when the batch reaches ``batch_size``
(inside that ``record()`` call), or within ``flush_interval`` seconds by the
background flusher.  :attr:`AuditLog.committed_seq` is the highest committed
seq; everything at or below it survives a crash.  ``batch_size=1`` commits
each record before ``record()`` returns.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import fcntl
import hashlib
import json
import math
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from control.runtime import ActionRecord
from control.safety.serialize import plain

GENESIS = "0" * 64
COLUMNS = ("at", "engine", "kind", "target", "decision", "rule", "outcome", "cost")
_TEXT_COLUMNS = frozenset(("engine", "kind", "target", "decision", "rule", "outcome"))
KEY_ENV = "ZEROOPS_AUDIT_KEY"
PUBLIC_KEY_ENV = "ZEROOPS_AUDIT_PUBLIC_KEY"
_DOMAIN = b"zeroops-audit-checkpoint/v1\n"  # what a checkpoint signature can mean: nothing else is signed with it
_CP_FIELDS = ("v", "trail", "seq", "count", "hash", "at", "key", "final")
CHECKPOINT_FSYNC_SECONDS = 1.0  # the checkpoint log is fsynced at most this often (and at creation and close)

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, engine TEXT NOT NULL, kind TEXT NOT NULL, target TEXT,
    decision TEXT NOT NULL, rule TEXT, outcome TEXT NOT NULL, cost REAL, body TEXT NOT NULL,
    prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_at ON records(at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
"""


class AuditError(Exception):
    """The audit database, key or checkpoint log cannot be used; the message names the file and says why."""


def chain_hash(prev: str, body: str) -> str:
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def record_body(rec: ActionRecord) -> dict[str, Any]:
    """The audited content of one choke-point record (made JSON-able when it is written)."""
    v, a, res = rec.verdict, rec.action, rec.result
    detail = v.detail
    cost = detail.get("cost_per_hour")
    return {
        "at": rec.at,
        "engine": rec.engine,
        "kind": a.kind,
        "target": a.target(),
        "decision": v.decision,
        "rule": v.rule,
        "outcome": rec.outcome,
        "action": {"kind": a.kind, "params": a.params(), "reason": a.reason, "confidence": a.confidence,
                   "evidence": a.evidence, "alternatives": a.alternatives, "incident": a.incident},
        "verdict": {"decision": v.decision, "rule": v.rule, "detail": detail, "approvers_needed": v.approvers},
        "approved_by": detail.get("approved_by", []),
        "result": None if res is None else {
            "ok": res.ok, "detail": res.detail, "server_ids": res.server_ids, "attempts": res.attempts},
        "error": rec.error,
        "cost_per_hour": cost if rec.outcome == "executed" else None,
        "proposed_cost_per_hour": cost,
        "choke_seq": rec.seq,
    }


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=plain).encode


def encode(body: dict[str, Any]) -> str:
    """The stored (and hashed) JSON text of a body; odd keys or values are made plain first."""
    try:
        return _encode(body)
    except (TypeError, ValueError):
        return _encode(plain(body))


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def row_columns(body: dict[str, Any]) -> tuple[Any, ...]:
    """The indexed columns (:data:`COLUMNS`) of a record, taken from its hashed body."""
    return (body.get("at", 0.0), body.get("engine", ""), body.get("kind", ""), body.get("target"),
            body.get("decision", ""), body.get("rule"), body.get("outcome", ""), _num(body.get("cost_per_hour")))


def _same_column(name: str, stored: Any, hashed: Any) -> bool:
    """Whether a stored column equals the hashed body's value, as SQLite's column affinity stores it."""
    if stored is None or hashed is None:
        return stored is None and hashed is None
    if name in _TEXT_COLUMNS and (isinstance(hashed, str) or not isinstance(hashed, int | float)):
        return bool(stored == hashed)
    try:  # a REAL column, or a number SQLite's TEXT affinity stored as text
        a, b = float(stored), float(hashed)
    except (TypeError, ValueError):
        return bool(stored == hashed)
    return a == b or (math.isnan(a) and math.isnan(b))


# ------------------------------------------------------------------- keys
def default_key_path() -> Path:
    """The writer's private key: ``$ZEROOPS_AUDIT_KEY``, else ``$XDG_CONFIG_HOME`` (default ``~/.config``)
    ``/zeroops/audit-ed25519.key``."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "zeroops" / "audit-ed25519.key"


def public_key_path(key_path: str | Path) -> Path:
    """Where the public half of a private key file is exported: ``<key>.pub``."""
    return Path(f"{key_path}.pub")


def checkpoint_path(db: str | Path) -> Path:
    """The default checkpoint log of the audit database ``db``: ``<db>.checkpoints``."""
    return Path(f"{db}.checkpoints")


def _raw(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(pub: Ed25519PublicKey) -> str:
    """A short, printable name of a public key (``ed25519:`` and 16 hex digits of its SHA-256)."""
    return "ed25519:" + hashlib.sha256(_raw(pub)).hexdigest()[:16]


def _public_pem(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _create_private_key(path: Path) -> None:
    """Write a new key to ``path`` (mode 0600) unless another process just did; never replaces a key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic and exclusive: a concurrent first use keeps exactly one key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


class AuditKey:
    """The writer's Ed25519 signing key; only :class:`AuditLog` needs it, verification needs the public half."""

    def __init__(self, private: Ed25519PrivateKey, path: Path | None = None) -> None:
        self.private = private
        self.public = private.public_key()
        self.path = path
        self.id = key_id(self.public)

    @classmethod
    def generate(cls) -> AuditKey:
        """A fresh key held in memory only (tests; export it with :meth:`save`)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | Path | None = None, *, create: bool = True) -> AuditKey:
        """The key at ``path`` (default :func:`default_key_path`), created on first use; exports ``<key>.pub``."""
        p = Path(path).expanduser() if path else default_key_path()
        try:
            if not p.exists():
                if not create:
                    raise AuditError(f"{p}: no such audit signing key")
                _create_private_key(p)
            mode = p.stat().st_mode & 0o777
            if mode & 0o077:
                raise AuditError(f"{p}: the audit signing key is accessible to others (mode {mode:o}); "
                                 f"run: chmod 600 {p}")
            private = serialization.load_pem_private_key(p.read_bytes(), password=None)
        except OSError as e:
            raise AuditError(f"{p}: cannot read or create the audit signing key: {e.strerror or e}") from None
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise AuditError(f"{p}: not an unencrypted PEM Ed25519 private key ({e})") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise AuditError(f"{p}: not an Ed25519 private key")
        key = cls(private, p)
        with contextlib.suppress(OSError):  # a read-only key directory: pass --public-key to verify instead
            key.export_public()
        return key

    def save(self, path: str | Path) -> Path:
        """Write this key to a new file ``path`` (mode 0600) and its public half to ``<path>.pub``."""
        p = Path(path)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        finally:
            os.close(fd)
        self.path = p
        self.export_public()
        return p

    def export_public(self, path: str | Path | None = None) -> Path:
        """Write the public key (PEM) to ``path`` (default ``<key>.pub``) if it is not already there."""
        if path is None and self.path is None:
            raise AuditError("this key has no file; give a path for its public key")
        pub = Path(path) if path is not None else public_key_path(self.path)  # type: ignore[arg-type]
        pem = _public_pem(self.public)
        if not (pub.is_file() and pub.read_bytes() == pem):
            tmp = pub.with_name(f".{pub.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(pem)
            os.chmod(tmp, 0o644)
            os.replace(tmp, pub)
        return pub


def load_public_key(path: str | Path | None = None) -> Ed25519PublicKey:
    """The public key that checks checkpoints: the file ``path`` (PEM, or 64 hex digits of the raw key), else
    ``$ZEROOPS_AUDIT_PUBLIC_KEY``, else ``<default key>.pub``, else the default private key's public half."""
    given = path or os.environ.get(PUBLIC_KEY_ENV)
    if given:
        p = Path(given).expanduser()
        if not p.is_file():
            raise AuditError(f"{p}: no such public key file")
        return _parse_public_key(p)
    kp = default_key_path()
    pub = public_key_path(kp)
    if pub.is_file():
        return _parse_public_key(pub)
    if kp.is_file():
        return AuditKey.load(kp, create=False).public
    raise AuditError(f"no public key to check the signed checkpoints: {pub} does not exist "
                     f"(pass --public-key FILE or set {PUBLIC_KEY_ENV})")


def _parse_public_key(p: Path) -> Ed25519PublicKey:
    try:
        data = p.read_bytes()
    except OSError as e:
        raise AuditError(f"{p}: cannot read the public key: {e.strerror or e}") from None
    text = data.strip()
    try:
        if len(text) == 64:
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode()))
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnicodeDecodeError, UnsupportedAlgorithm) as e:
        raise AuditError(f"{p}: not an Ed25519 public key (PEM or 64 hex digits): {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{p}: not an Ed25519 public key")
    return key


# -------------------------------------------------------- signed checkpoints
def _signed_bytes(fields: dict[str, Any]) -> bytes:
    return _DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_line(key: AuditKey, trail: str, seq: int, count: int, head: str, at: float, final: bool = False) -> str:
    """One signed checkpoint: a JSON line vouching that trail ``trail`` held ``count`` records up to ``seq``
    with chain hash ``head`` at wall time ``at`` (``final``: written when the writer closed)."""
    fields = {"v": 1, "trail": trail, "seq": seq, "count": count, "hash": head, "at": round(at, 6), "key": key.id,
              "final": final}
    sig = base64.b64encode(key.private.sign(_signed_bytes(fields))).decode()
    return json.dumps({**fields, "sig": sig}, sort_keys=True, separators=(",", ":")) + "\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint whose signature verified; ``line`` is its line number in the log."""

    line: int
    trail: str
    seq: int
    count: int
    hash: str
    at: float
    final: bool
    source: str = ""  # the file it was read from

    @property
    def where(self) -> str:
        return f"line {self.line} of {self.source}"


def _parse_checkpoint(raw: bytes, pub: Ed25519PublicKey, kid: str, line: int, source: str = "") -> Checkpoint | str:
    """The checkpoint on one log line, or why it is not one."""
    try:
        obj = json.loads(raw)
        if not isinstance(obj, dict) or set(obj) != {*_CP_FIELDS, "sig"}:
            raise ValueError("fields")
        fields = {k: obj[k] for k in _CP_FIELDS}
        sig = base64.b64decode(obj["sig"], validate=True)
        ok_types = (isinstance(fields["trail"], str) and isinstance(fields["hash"], str)
                    and isinstance(fields["final"], bool) and isinstance(fields["at"], int | float)
                    and all(isinstance(fields[k], int) and not isinstance(fields[k], bool) and fields[k] >= 0
                            for k in ("seq", "count")))
        if not ok_types:
            raise ValueError("types")
    except (ValueError, TypeError, KeyError):
        return "not a checkpoint (edited or corrupted)"
    if fields["key"] != kid:
        return f"signed by key {fields['key']}, not by {kid}"
    try:
        pub.verify(sig, _signed_bytes(fields))
    except InvalidSignature:
        return f"signature does not verify with key {kid} (forged or edited checkpoint)"
    return Checkpoint(line, fields["trail"], fields["seq"], fields["count"], fields["hash"], float(fields["at"]),
                      fields["final"], source)


@dataclass(slots=True)
class CheckpointLog:
    """What a checkpoint log holds: verified checkpoints, problems per line, notes."""

    checkpoints: list[Checkpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_checkpoints(path: str | Path, public_key: Ed25519PublicKey) -> CheckpointLog:
    """Read and check every line of a checkpoint log against ``public_key``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise AuditError(f"{p}: cannot read the checkpoint log: {e.strerror or e}") from None
    out = CheckpointLog()
    kid = key_id(public_key)
    lines = data.split(b"\n")
    torn = bool(lines[-1])  # no newline at the end: the last write was cut short
    if not torn:
        lines.pop()
    wrong_key: dict[str, list[int]] = {}
    for n, raw in enumerate(lines, 1):
        got = _parse_checkpoint(raw, public_key, kid, n, str(p))
        if isinstance(got, Checkpoint):
            out.checkpoints.append(got)
        elif torn and n == len(lines):
            out.notes.append(f"line {n}: incomplete last line (a write cut short by a crash); ignored")
        elif got.startswith("signed by key"):
            wrong_key.setdefault(got, []).append(n)
        else:
            out.problems.append(f"line {n}: {got}")
    for why, at in wrong_key.items():
        where = f"line {at[0]}" if len(at) == 1 else f"{len(at)} lines (first: line {at[0]})"
        out.problems.append(f"{where}: {why} (a trail signed by another key swapped in, or the wrong --public-key)")
    return out


def _last_line(path: Path) -> tuple[bytes, int]:
    """The last complete line of a file and its line number (counts newlines, reads only the tail for the line)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        back = min(size, 1 << 16)
        f.seek(size - back)
        tail = f.read(back)
    lines = tail.rstrip(b"\n").split(b"\n")
    with open(path, "rb") as f:
        count = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return (lines[-1] if lines else b""), count


class AuditLog:
    """The durable ``ActionLog``: one writer per database file (an exclusive lock file enforces it).

    ``key``: the signing key (an :class:`AuditKey` or a key file; default :func:`default_key_path`, created on
    first use).  ``checkpoints``: the checkpoint log (default ``<db>.checkpoints``).  ``:memory:`` databases
    are not signed.
    """

    def __init__(self, path: str | Path, *, batch_size: int = 512, flush_interval: float = 0.05,
                 synchronous: str = "FULL", background: bool = True, key: AuditKey | str | Path | None = None,
                 checkpoints: str | Path | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA", "OFF"):
            raise ValueError(f"synchronous must be FULL, NORMAL, EXTRA or OFF, got {synchronous!r}")
        self.path = str(path)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._lockfile: Any = None
        self._closed = False
        self.key: AuditKey | None = None
        self.trail_id: str | None = None
        self.checkpoints_path: Path | None = None
        self._cp_fd: int | None = None
        self._cp_synced = time.monotonic()
        self._thread: threading.Thread | None = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lockfile = open(self.path + ".writer-lock", "a+")  # noqa: SIM115 - held for the log's life
            try:
                fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lockfile.close()
                raise AuditError(f"{self.path}: another process is writing this audit trail") from None
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self.db.executescript(SCHEMA)
            row = self.db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.DatabaseError as e:
            if self._lockfile is not None:
                self._lockfile.close()
            raise AuditError(f"{self.path}: not a usable audit database: {e}") from None
        self._seq, self._head = (int(row[0]), str(row[1])) if row else (0, GENESIS)
        self.committed_seq = self._seq
        self._committed_head = self._head
        self._signed_seq = self._seq
        if self.path != ":memory:":
            try:
                self._open_signing(key, checkpoints)
            except BaseException as e:
                self.db.close()
                self._lockfile.close()
                if self._cp_fd is not None:
                    os.close(self._cp_fd)
                if isinstance(e, OSError):
                    raise AuditError(f"{e.filename or self.checkpoints_path}: cannot write the checkpoint log: "
                                     f"{e.strerror or e}") from None
                raise
        self._pending: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if background and flush_interval > 0 and batch_size > 1:
            self._thread = threading.Thread(target=self._flusher, name="audit-flusher", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------- signing
    def _open_signing(self, key: AuditKey | str | Path | None, checkpoints: str | Path | None) -> None:
        """Create the trail's identity and genesis checkpoint, or check the trail may be extended."""
        self.key = key if isinstance(key, AuditKey) else AuditKey.load(key)
        log = self.checkpoints_path = Path(checkpoints) if checkpoints else checkpoint_path(self.path)
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        trail = meta.get("trail_id")
        if trail is None:
            if self._seq:
                raise AuditError(f"{self.path}: holds {self._seq} records but no trail id (it predates signed "
                                 "checkpoints, or its identity was removed); check it with `zeroops audit verify` "
                                 "and start a new trail in a new file")
            trail = secrets.token_hex(16)
            if log.exists() and log.stat().st_size:  # an earlier trail's evidence at this path: keep it
                os.replace(log, log.with_name(f"{log.name}.replaced-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
                                                f"-{secrets.token_hex(3)}"))
            self._cp_fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._write_checkpoint(trail, 0, GENESIS, fsync=True)  # the log exists before the trail does
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                ("trail_id", trail), ("key_id", self.key.id), ("public_key", _raw(self.key.public).hex()),
                ("created_at", repr(time.time()))])
            self.db.execute("COMMIT")
            self.trail_id, self._signed_seq = trail, 0
            return
        if meta.get("key_id") != self.key.id:
            raise AuditError(f"{self.path}: trail {trail} is signed by key {meta.get('key_id')}, but the configured "
                             f"key {self.key.path or '(in memory)'} is {self.key.id}; use that trail's key "
                             f"(${KEY_ENV}) or start a new trail in a new file")
        refuse = f"; refusing to extend trail {trail} (run: zeroops audit verify --db {self.path})"
        if not log.is_file():
            raise AuditError(f"{log}: the checkpoint log of {self.path} is missing{refuse}")
        with open(log, "rb+") as f:  # a crash mid-append leaves a partial last line: drop it before appending
            end = f.seek(0, os.SEEK_END)
            f.seek(max(0, end - 4096))
            tail = f.read()
            cut = tail.rfind(b"\n")
            if tail and not tail.endswith(b"\n"):
                if cut < 0:  # not a checkpoint cut short (those are a few hundred bytes): leave it as evidence
                    raise AuditError(f"{log}: ends in more than 4 KiB that are not a checkpoint{refuse}")
                f.truncate(end - len(tail) + cut + 1)
        raw, n = _last_line(log)
        last = _parse_checkpoint(raw, self.key.public, self.key.id, n) if raw else "the log is empty"
        if not isinstance(last, Checkpoint):
            raise AuditError(f"{log}: line {n}: {last}{refuse}")
        if last.trail != trail:
            raise AuditError(f"{log}: signs trail {last.trail}, but {self.path} is trail {trail}{refuse}")
        if last.seq > self._seq:
            raise AuditError(f"{self.path}: records {self._seq + 1}..{last.seq} signed in {log} are missing{refuse}")
        rows = self.db.execute("SELECT seq, body, prev, hash FROM records WHERE seq >= ? ORDER BY seq",
                               (last.seq,)).fetchall()
        prev = GENESIS if last.seq == 0 else (rows[0][3] if rows and rows[0][0] == last.seq else None)
        if prev != last.hash:
            raise AuditError(f"{self.path}: record {last.seq} does not match its signed checkpoint in {log}{refuse}")
        expect = last.seq + 1
        for seq, text, p, h in rows[1:] if last.seq else rows:  # records committed after the last checkpoint
            if seq != expect or p != prev or chain_hash(p, text) != h:
                raise AuditError(f"{self.path}: record {seq} does not chain from record {expect - 1}{refuse}")
            prev, expect = h, seq + 1
        self.trail_id, self._signed_seq = trail, last.seq
        self._cp_fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        if self._seq > last.seq:  # vouch now for the records a crash left unsigned (their chain was just checked)
            self._write_checkpoint(trail, self._seq, self._head)

    def _write_checkpoint(self, trail: str, seq: int, head: str, *, final: bool = False, fsync: bool = False) -> None:
        assert self.key is not None and self._cp_fd is not None
        data = checkpoint_line(self.key, trail, seq, seq, head, time.time(), final).encode()
        while data:
            data = data[os.write(self._cp_fd, data):]
        self._signed_seq = seq
        if fsync or (self._thread is None and time.monotonic() - self._cp_synced >= CHECKPOINT_FSYNC_SECONDS):
            self._sync_checkpoints()  # with a flusher thread, it syncs the log outside the lock instead

    def _sync_checkpoints(self) -> None:
        """fsync the checkpoint log: bounds what a power loss can take from it (a lag, never tampering)."""
        if self._cp_fd is not None:
            os.fsync(self._cp_fd)
        self._cp_synced = time.monotonic()

    # ---------------------------------------------------------------- writing
    def record(self, rec: ActionRecord) -> None:
        """``ActionLog`` protocol: append one choke-point record (sets ``rec.audit_id``)."""
        rec.audit_id = self.append(record_body(rec))

    def append(self, body: dict[str, Any]) -> int:
        """Append one record body; returns its seq. Committed per the module's group-commit rules."""
        with self._lock:
            seq = self._seq + 1
            body["seq"] = seq
            text = encode(body)
            h = chain_hash(self._head, text)
            get = body.get  # the columns of row_columns(), inlined: this is the hot path
            self._pending.append((seq, get("at", 0.0), get("engine", ""), get("kind", ""), get("target"),
                                  get("decision", ""), get("rule"), get("outcome", ""), _num(get("cost_per_hour")),
                                  text, self._head, h))
            self._seq, self._head = seq, h
            if len(self._pending) >= self.batch_size:
                self._flush_locked()
            return seq

    def flush(self) -> int:
        """Commit everything appended so far and sign a checkpoint of it; returns :attr:`committed_seq`."""
        with self._lock:
            self._flush_locked()
            return self.committed_seq

    def _flush_locked(self) -> None:
        if self._pending:
            rows, last = self._pending, self._pending[-1]
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('head_seq', ?), ('head_hash', ?)",
                           (str(last[0]), last[-1]))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._pending = []
            self.committed_seq, self._committed_head = int(last[0]), last[-1]
        if self._cp_fd is not None and self._signed_seq != self.committed_seq:
            # after the COMMIT: the log never signs what the database does not hold; a crash in between
            # leaves committed records after the last checkpoint, verified by the chain only
            self._write_checkpoint(self.trail_id, self.committed_seq, self._committed_head)  # type: ignore[arg-type]

    def _flusher(self) -> None:
        while not self._stop.wait(self.flush_interval):
            with self._lock, contextlib.suppress(sqlite3.Error, OSError):  # the owner's next flush() raises it
                self._flush_locked()
            if self._cp_fd is not None and time.monotonic() - self._cp_synced >= CHECKPOINT_FSYNC_SECONDS:
                with contextlib.suppress(OSError):  # not under the lock: appends go on while the disk syncs
                    self._sync_checkpoints()

    def close(self) -> None:
        """Commit, sign a final checkpoint, release the file."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.flush()
            if self._cp_fd is not None:
                self._write_checkpoint(self.trail_id, self.committed_seq, self._committed_head,  # type: ignore[arg-type]
                                       final=True, fsync=True)
        finally:
            if self._cp_fd is not None:
                os.close(self._cp_fd)
                self._cp_fd = None
            self.db.close()
            if self._lockfile is not None:
                self._lockfile.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --------------------------------------------------------------- reading
    def reader(self) -> AuditReader:
        """A reader on the same database (call :meth:`flush` first to see pending records)."""
        return AuditReader(self.path, conn=self.db if self.path == ":memory:" else None,
                           public_key=self.key.public if self.key else None, checkpoints=self.checkpoints_path)


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored record."""

    seq: int
    hash: str
    prev: str
    body: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.body[key]


@dataclass(slots=True)
class VerifyReport:
    """What :meth:`AuditReader.verify` found.  ``problems[i]`` was found in the file ``files[i]``."""

    records: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bad_seqs: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed: bool = False               # signed checkpoints were checked
    trail: str | None = None
    key: str | None = None             # key id the checkpoints were checked against
    checkpoint_log: str | None = None
    checkpoints: int = 0               # valid checkpoints of this trail
    signed_seq: int = 0                # the last record a valid checkpoint vouches for
    unsigned: int = 0                  # records after the last signed checkpoint (verified by chain only)
    closed: bool = False               # the last checkpoint is the writer's final one and covers every record

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, file: str, problem: str) -> None:
        self.problems.append(problem)
        self.files.append(file)


class AuditReader:
    """Read-only access: listing, showing and verifying the chain and its signed checkpoints."""

    def __init__(self, path: str | Path, conn: sqlite3.Connection | None = None, *,
                 public_key: Ed25519PublicKey | None = None, checkpoints: str | Path | None = None) -> None:
        self.path = str(path)
        self.public_key = public_key
        self.checkpoints = checkpoints
        self.in_memory = conn is not None
        if conn is not None:
            self.db = conn
            return
        if not Path(self.path).is_file():
            raise AuditError(f"{self.path}: no such audit database")
        try:
            self.db = sqlite3.connect(f"file:{Path(self.path).resolve()}?mode=ro", uri=True, timeout=30.0)
            self.db.execute("SELECT seq FROM records LIMIT 1").fetchall()
        except sqlite3.DatabaseError as e:
            raise AuditError(f"{self.path}: not an audit database: {e}") from None

    def list(self, *, since: float | None = None, engine: str | None = None, limit: int | None = None,
             outcome: str | None = None) -> list[Entry]:
        where, args = [], []
        for col, val, op in (("at", since, ">="), ("engine", engine, "="), ("outcome", outcome, "=")):
            if val is not None:
                where.append(f"{col} {op} ?")
                args.append(val)
        sql = "SELECT seq, hash, prev, body FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace('ORDER BY seq', 'ORDER BY seq DESC')} LIMIT {int(limit)}) ORDER BY seq"
        return [Entry(r[0], r[1], r[2], json.loads(r[3])) for r in self.db.execute(sql, args)]

    def get(self, seq: int) -> Entry | None:
        r = self.db.execute("SELECT seq, hash, prev, body FROM records WHERE seq=?", (seq,)).fetchone()
        return Entry(r[0], r[1], r[2], json.loads(r[3])) if r else None

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def rows(self) -> Iterator[tuple[Any, ...]]:
        yield from self.db.execute(f"SELECT seq, {', '.join(COLUMNS)}, body, prev, hash FROM records ORDER BY seq")

    def verify(self, public_key: Ed25519PublicKey | str | Path | None = None, *,
               checkpoints: str | Path | None = None, signed: bool | None = None,
               anchors: Sequence[str | Path] = ()) -> VerifyReport:
        """Walk the chain and check it against the signed checkpoints; name every edited, removed, inserted,
        reordered, rewritten or swapped record and the file it is in.

        ``public_key``: a key or a key file (default :func:`load_public_key`); ``checkpoints``: the log (default
        ``<db>.checkpoints``); ``anchors``: copies of earlier checkpoint lines kept out of an attacker's reach
        (the database and its log must still hold what they sign: this catches a rollback of both);
        ``signed=False`` checks the chain only (always so for ``:memory:``).
        """
        rep = VerifyReport()
        db_file = self.path
        cps: list[Checkpoint] = []
        saved: list[Checkpoint] = []  # from the anchors
        pub: Ed25519PublicKey | None = None
        log: Path | None = None
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if signed is None:
            signed = not self.in_memory
        if signed:
            if isinstance(public_key, Ed25519PublicKey):
                pub = public_key
            elif public_key is None and self.public_key is not None:
                pub = self.public_key
            else:
                pub = load_public_key(public_key)
            log = Path(checkpoints or self.checkpoints or checkpoint_path(self.path))
            rep.signed, rep.key, rep.checkpoint_log = True, key_id(pub), str(log)
            if log.is_file():
                got = read_checkpoints(log, pub)
                for p in got.problems:
                    rep.add(str(log), p)
                rep.notes += [f"{log}: {n}" for n in got.notes]
                cps = got.checkpoints
            for a in anchors:
                if not Path(a).is_file():
                    raise AuditError(f"{a}: no such anchor file")
                got = read_checkpoints(a, pub)
                for p in got.problems:
                    rep.add(str(a), p)
                saved += got.checkpoints
        need = {c.seq for c in (*cps, *saved)}
        hash_at: dict[int, str] = {}
        seqs: list[int] = []

        prev_hash, expect = GENESIS, 1
        for row in self.rows():
            seq, cols, text, prev, h = row[0], row[1:1 + len(COLUMNS)], row[-3], row[-2], row[-1]
            rep.records += 1
            seqs.append(seq)
            if seq in need:
                hash_at[seq] = h
            gap = seq != expect
            if seq > expect:
                span = f"record {expect}" if seq == expect + 1 else f"records {expect}..{seq - 1}"
                rep.add(db_file, f"{span} missing (removed)")
            elif seq < expect:
                rep.add(db_file, f"record {seq}: out of order (reordered)")
            try:
                body = json.loads(text)
            except (TypeError, ValueError):
                body = None
            bad = False
            if not isinstance(body, dict):
                rep.add(db_file, f"record {seq}: body is not valid JSON (edited)")
                bad = True
            elif body.get("seq") != seq:
                rep.add(db_file, f"record {seq}: holds the content of record {body.get('seq')} (reordered)")
                bad = True
            if chain_hash(prev, text if isinstance(text, str) else "") != h:
                if not bad:
                    rep.add(db_file, f"record {seq}: content does not match its hash (edited)")
                bad = True
            elif prev != prev_hash and not gap:
                rep.add(db_file, f"record {seq}: does not link to record {seq - 1} "
                                 f"(record {seq - 1} was rewritten, or records were inserted or reordered)")
                bad = True
            if isinstance(body, dict) and not bad:
                for name, val, hashed in zip(COLUMNS, cols, row_columns(body), strict=True):
                    if not _same_column(name, val, hashed):
                        rep.add(db_file, f"record {seq}: column {name!r} is {val!r} but the hashed record says "
                                         f"{hashed!r} (edited)")
                        bad = True
                        break
            if bad:
                rep.bad_seqs.append(seq)
            prev_hash, expect = h, max(expect, seq + 1)
        rep.head = prev_hash
        head_seq = int(meta.get("head_seq", 0) or 0)
        if head_seq >= expect:
            span = f"record {head_seq}" if head_seq == expect else f"records {expect}..{head_seq}"
            rep.add(db_file, f"{span} missing at the end (removed; the head says {head_seq})")
        elif head_seq and meta.get("head_hash") != prev_hash and head_seq == expect - 1:
            rep.add(db_file, f"record {head_seq}: differs from the recorded head hash (edited)")
        if signed:
            assert log is not None and pub is not None
            self._check_signed(rep, meta, log, cps, saved, hash_at, seqs, expect - 1)
        return rep

    def _check_signed(self, rep: VerifyReport, meta: dict[str, str], log: Path, cps: list[Checkpoint],
                      saved: list[Checkpoint], hash_at: dict[int, str], seqs: list[int], last_seq: int) -> None:
        """The database against its signed checkpoints (the log's and the anchors'): identity, key, coverage,
        hashes and counts."""
        db_file, log_file = self.path, str(log)
        trail = rep.trail = meta.get("trail_id")
        if trail is None:
            rep.add(db_file, "no trail id: the database's identity was removed, or it predates signed checkpoints")
        if meta.get("key_id") is not None and meta.get("key_id") != rep.key:
            rep.add(db_file, f"was created for key {meta['key_id']}, not {rep.key} (a trail signed by another key "
                             "swapped in, or the wrong --public-key)")
        if not log.is_file():
            rep.add(log_file, "checkpoint log missing: nothing outside the database vouches for this trail "
                              "(removed, or the database was copied without it)")
        own = [c for c in cps if c.trail == trail]
        others: dict[str, list[int]] = {}
        for c in cps:
            if c.trail != trail:
                others.setdefault(c.trail, []).append(c.line)
        for t, lines in others.items():
            if own:  # a foreign trail's lines in this trail's log
                rep.add(log_file, f"{len(lines)} checkpoint(s) (first: line {lines[0]}) sign trail {t}, not this "
                                  f"trail {trail} (spliced in from another trail's log)")
            else:
                rep.add(db_file, f"is trail {trail}, but its checkpoint log {log_file} signs trail {t} (the database, "
                                 "or its log, was swapped for another trail's)")
        if not own and log.is_file() and trail is not None and not others:
            rep.add(log_file, f"no valid signed checkpoint of trail {trail}")
        anchored = [c for c in saved if c.trail == trail]
        for c in saved:
            if c.trail != trail:
                rep.add(c.source, f"line {c.line}: signs trail {c.trail}, but the database is trail {trail} (the "
                                  "database and its log were swapped for another trail's)")
        log_top = max((c.seq for c in own), default=-1)
        for c in anchored:
            if log.is_file() and c.seq > log_top:
                rep.add(log_file, f"signs records only up to {max(log_top, 0)}, but {c.where} signs record {c.seq} "
                                  "(the log was cut back)")
        rep.checkpoints = len(own)
        top = -1
        for c in own:
            if c.seq < top:
                rep.add(log_file, f"line {c.line}: checkpoint of record {c.seq} follows one of record {top} "
                                  "(lines reordered or spliced in)")
            top = max(top, c.seq)
        every = own + anchored
        if not every:
            rep.unsigned = rep.records
            return
        top = rep.signed_seq = max(c.seq for c in every)
        matched, mismatched = 0, None
        for c in sorted(every, key=lambda c: c.seq):
            if c.seq == 0:
                if c.hash != GENESIS or c.count != 0:
                    rep.add(c.source, f"line {c.line}: the genesis checkpoint signs a non-empty trail")
                continue
            h = hash_at.get(c.seq)
            if h is None:
                continue  # missing records: reported below (tail) or by the chain walk (middle)
            if h != c.hash:
                if mismatched is None:
                    mismatched = c
                continue
            if mismatched is None:
                matched = c.seq
            have = bisect.bisect_right(seqs, c.seq)
            if have != c.count:
                rep.add(db_file, f"holds {have} records up to record {c.seq}, but {c.where} signs {c.count} "
                                 "(records inserted or removed)")
        if mismatched is not None:
            c = mismatched
            rep.add(db_file, f"records {matched + 1}..{c.seq} rewritten: record {c.seq}'s chain hash differs from "
                             f"the one signed at {c.where} (edited and re-hashed, or another trail swapped in)")
        if top > last_seq:
            c = max(every, key=lambda c: c.seq)
            what = "the trail was wiped" if rep.records == 0 else "tail truncated"
            rep.add(db_file, f"records {last_seq + 1}..{top} missing: signed at {c.where} but not in the "
                             f"database ({what})")
        rep.unsigned = max(0, last_seq - top)
        if own:
            final = max(own, key=lambda c: (c.seq, c.line))
            rep.closed = final.final and final.seq == last_seq and own[-1] is final


def verify(path: str | Path, public_key: Ed25519PublicKey | str | Path | None = None, *,
           checkpoints: str | Path | None = None, signed: bool = True,
           anchors: Sequence[str | Path] = ()) -> VerifyReport:
    """Verify the audit database at ``path`` against its signed checkpoints (see :meth:`AuditReader.verify`)."""
    return AuditReader(path).verify(public_key, checkpoints=checkpoints, signed=signed, anchors=anchors)


def open_audit(path: str | Path | None = None, **kw: Any) -> AuditLog:
    """An :class:`AuditLog` at ``path`` (default ``$ZEROOPS_AUDIT_DB``, else ``audit.db`` in the state directory)."""
    from control.statedir import AUDIT_FILE, state_dir

    return AuditLog(path or os.environ.get("ZEROOPS_AUDIT_DB") or str(state_dir() / AUDIT_FILE), **kw)
