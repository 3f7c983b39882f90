"""Where an interleaved answer's attribution waits for its clicks, and the replica's interleaving counts.

An impression is remembered (which ranker contributed each counted item) until its clicks are reported or its
click window ends. With the stack's cache the replicas share one store, so a click may reach any replica; without
one, each replica keeps its own impressions in its ledger, and a click reaching another replica is passed on to
the one whose index the impression id starts with. Either way a claim is atomic: an impression is credited once,
and one that expires unclicked is counted once, as expired.

The counts (impressions served, clicks credited to each ranker or to neither, expired, fallbacks to control) are
this replica's own and only grow; they live in SQLite on the replica's volume, clicks committed with
`synchronous=FULL` before the caller gets its 200.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from turnout_agent.cache import Cache

CLAIMED, DUPLICATE, UNKNOWN = "claimed", "duplicate", "unknown"
SCHEMA = """
CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS impressions (
  id TEXT PRIMARY KEY, assignment TEXT NOT NULL, expires REAL NOT NULL, credited INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS impressions_expiry ON impressions (expires);
"""
MAX_LOCAL_PENDING = 500_000


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


class InterleavingLedger:
    """The replica's counts and, without a cache, its impressions (one SQLite file, two connections: NORMAL for
    what the user's path writes, FULL for what a caller is told was counted)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fast = _connect(path, "NORMAL")
        self._fast.executescript(SCHEMA)
        self._durable = _connect(path, "FULL")
        self._lock = threading.Lock()

    @staticmethod
    def _add(db: sqlite3.Connection, name: str, value: int) -> None:
        db.execute(
            "INSERT INTO counts (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, value, value),
        )

    def count(self, name: str, value: int = 1, *, durable: bool = False) -> None:
        with self._lock:
            self._add(self._durable if durable else self._fast, name, value)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._fast.execute("SELECT name, value FROM counts ORDER BY name").fetchall())

    # local impressions --------------------------------------------------------------------------------

    def remember(self, impression: str, assignment: dict, expires: float, *, served: str) -> None:
        with self._lock:
            self._fast.execute("BEGIN")
            self._fast.execute(
                "INSERT INTO impressions (id, assignment, expires) VALUES (?, ?, ?)",
                (impression, json.dumps(assignment, separators=(",", ":")), expires),
            )
            self._add(self._fast, served, 1)
            self._fast.execute("COMMIT")

    def claim(self, impression: str, credit_of, *, now: float) -> tuple[str, str | None]:
        """Credit an impression once, durably, in one transaction: (CLAIMED, credit) | (DUPLICATE, None) |
        (UNKNOWN, None). `credit_of(assignment)` names the count to add."""
        with self._lock:
            db = self._durable
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT assignment, expires, credited FROM impressions WHERE id = ?", (impression,)
                ).fetchone()
                if row is None or (not row[2] and row[1] < now):
                    db.execute("COMMIT")
                    return UNKNOWN, None
                if row[2]:
                    db.execute("COMMIT")
                    return DUPLICATE, None
                credit = credit_of(json.loads(row[0]))
                db.execute("UPDATE impressions SET credited = 1 WHERE id = ?", (impression,))
                self._add(db, credit, 1)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return CLAIMED, credit

    def sweep(self, now: float, *, window_s: float, expired: str) -> int:
        """Count what expired unclicked (once), and forget credited impressions a window after they expired."""
        with self._lock:
            db = self._durable
            db.execute("BEGIN IMMEDIATE")
            try:
                gone = db.execute("DELETE FROM impressions WHERE credited = 0 AND expires < ?", (now,)).rowcount
                db.execute("DELETE FROM impressions WHERE credited = 1 AND expires < ?", (now - window_s,))
                if gone:
                    self._add(db, expired, gone)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return gone

    def pending(self) -> int:
        with self._lock:
            return self._fast.execute("SELECT count(*) FROM impressions WHERE credited = 0").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._fast.close()
            self._durable.close()


class LocalImpressions:
    """Impressions in this replica's ledger (no cache in the stack)."""

    shared = False

    def __init__(self, ledger: InterleavingLedger, window_s: float) -> None:
        self.ledger, self.window_s = ledger, window_s
        self._pending = ledger.pending()

    def remember(self, impression: str, assignment: dict, *, served: str, now: float | None = None) -> bool:
        if self._pending >= MAX_LOCAL_PENDING:
            return False
        now = time.time() if now is None else now
        self.ledger.remember(impression, assignment, now + self.window_s, served=served)
        self._pending += 1
        return True

    def claim(self, impression: str, credit_of, *, now: float | None = None) -> tuple[str, str | None]:
        status, credit = self.ledger.claim(impression, credit_of, now=time.time() if now is None else now)
        if status == CLAIMED:
            self._pending -= 1
        return status, credit

    def sweep(self, *, expired: str, now: float | None = None) -> int:
        gone = self.ledger.sweep(time.time() if now is None else now, window_s=self.window_s, expired=expired)
        self._pending = max(0, self._pending - gone)
        return gone


class SharedImpressions:
    """Impressions in the stack's cache, shared by every replica: the attribution under a key that outlives the
    window, and a sorted set of pending ids by expiry whose ZREM decides, once, who credits or expires each."""

    shared = True

    def __init__(self, cache: Cache, ledger: InterleavingLedger, *, prefix: str, window_s: float) -> None:
        self.cache, self.ledger, self.prefix, self.window_s = cache, ledger, prefix, window_s
        self.pending_key = f"{prefix}:pending"

    def _key(self, kind: str, impression: str) -> str:
        return f"{self.prefix}:{kind}:{impression}"

    def remember(self, impression: str, assignment: dict, *, served: str, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        ttl = int(self.window_s * 2) + 60
        self.cache.pipeline(
            ("SET", self._key("imp", impression), json.dumps(assignment, separators=(",", ":")), "EX", ttl),
            ("ZADD", self.pending_key, repr(now + self.window_s), impression),
        )
        self.ledger.count(served)
        return True

    def claim(self, impression: str, credit_of, *, now: float | None = None) -> tuple[str, str | None]:
        if self.cache.execute("ZREM", self.pending_key, impression) == 1:
            stored, _, _ = self.cache.pipeline(
                ("GET", self._key("imp", impression)),
                ("DEL", self._key("imp", impression)),
                ("SET", self._key("done", impression), "1", "EX", int(self.window_s) + 60),
            )
            if stored is None:
                return UNKNOWN, None  # the attribution was evicted from the cache
            credit = credit_of(json.loads(stored))
            self.ledger.count(credit, durable=True)
            return CLAIMED, credit
        if self.cache.execute("EXISTS", self._key("done", impression)):
            return DUPLICATE, None
        return UNKNOWN, None

    def sweep(self, *, expired: str, now: float | None = None, batch: int = 500) -> int:
        now = time.time() if now is None else now
        gone = 0
        while True:
            due = self.cache.execute("ZRANGEBYSCORE", self.pending_key, "-inf", repr(now), "LIMIT", 0, batch)
            if not due:
                return gone
            removed = self.cache.pipeline(*(("ZREM", self.pending_key, i) for i in due))
            mine = [i for i, r in zip(due, removed, strict=True) if r == 1]
            if mine:
                self.cache.pipeline(*(("DEL", self._key("imp", i.decode())) for i in mine))
                self.ledger.count(expired, len(mine), durable=True)
                gone += len(mine)
            if len(due) < batch:
                return gone
