"""The replica's durable reward ledger: SQLite on the replica's own volume, written before answering.

Totals per version are cumulative and never reset, so the leader can add every replica's totals
without counting anything twice, and a replica that restarts answers with what it had. Feedback
naming a request id is counted once: the id is kept (for `dedupe_s`) in the same transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS totals (
  version TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  reward_sum REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
  request_id TEXT PRIMARY KEY,
  at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Outcome:
    version: str
    reward: float
    request_id: str | None = None


@dataclass(frozen=True)
class Recorded:
    accepted: int
    duplicates: int


class Ledger:
    def __init__(self, path: Path, *, dedupe_s: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # WAL with FULL sync: a COMMIT has reached the disk when it returns, and readers never block the writer.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._dedupe_s = dedupe_s
        self._last_prune = 0.0

    def record(self, outcomes: list[Outcome], *, now: float | None = None) -> Recorded:
        """Count every outcome in one transaction, durable when this returns; repeated request ids count once."""
        now = time.time() if now is None else now
        accepted = duplicates = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for outcome in outcomes:
                    if outcome.request_id is not None:
                        inserted = self._db.execute(
                            "INSERT OR IGNORE INTO seen (request_id, at) VALUES (?, ?)", (outcome.request_id, now)
                        ).rowcount
                        if not inserted:
                            duplicates += 1
                            continue
                    self._db.execute(
                        "INSERT INTO totals (version, count, reward_sum) VALUES (?, 1, ?) ON CONFLICT(version) "
                        "DO UPDATE SET count = count + 1, reward_sum = reward_sum + excluded.reward_sum",
                        (outcome.version, outcome.reward),
                    )
                    accepted += 1
                if now - self._last_prune > 3600:
                    self._db.execute("DELETE FROM seen WHERE at < ?", (now - self._dedupe_s,))
                    self._last_prune = now
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return Recorded(accepted, duplicates)

    def totals(self) -> dict[str, tuple[int, float]]:
        """version -> (feedback count, reward sum), cumulative since the ledger began."""
        with self._lock:
            rows = self._db.execute("SELECT version, count, reward_sum FROM totals ORDER BY version").fetchall()
        return {version: (count, reward_sum) for version, count, reward_sum in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()
