"""The trading journal: one SQLite file in WAL mode, the runner's memory across crashes.

Every child order is written before it exists anywhere else: the whole plan of a decision
(its parents and child orders, status ``planned``) in one transaction, then each child's
status ``intent`` is committed *before* it is handed to the broker, with the order id it goes
out with. After that every ack,
status change, fill (by execution id, so a fill seen twice is stored once), commission and
position snapshot is appended. ``synchronous=FULL``: a committed row survives the process
being killed at any instruction, and a power cut.

Tables:

- ``meta``: the run id and what the journal belongs to (account, created).
- ``state``: small persistent values (kill switch, day-start and peak equity, reject count).
- ``decisions``: one row per decision, keyed by its bar and the config that made it (a hash of
  the config parts that determine targets, kept beside it as JSON, so that another universe or
  ``top_k`` on the same bar is a decision of its own): its status (``planned``, ``done``,
  ``skipped``), the equity used for sizing, when execution started, and every symbol's target
  weight (JSON, for the final check at current prices). Journals written before decisions had
  a config key get these columns on opening; their decisions have no config (``None``) and
  stand for whatever config ran on their bar.
- ``parents``: per decision and symbol, the target shares, the position when planned, the
  parent quantity and its arrival price.
- ``orders``: one row per child order, keyed by its orderRef, with its release and expiry
  times, status, broker ids, filled quantity and average price, and a reason when blocked,
  rejected or cancelled. Exit orders (``pipeline.live.exits``) are rows of their own kind
  (``kind = 'exit'``, NULL for a decision's children) with their terms as JSON (type, trigger,
  limit, trail, tif, OCA group); they work until filled or cancelled, past any horizon, so a
  decision's ``children`` leave them out. Journals from before exits get both columns on opening.
- ``fills``: executions keyed by execution id, with commission.
- ``sends``: every time a child was handed to the broker (its intent): the order id it carried.
  A child is matched to the broker's orders by orderRef, perm id or these order ids (a gateway
  that drops the orderRef), and the rows count its re-sends.
- ``events``: an append-only log of everything that happened to an order or the run.
- ``positions``: position snapshots.

Order statuses: ``planned`` (not sent; safe to send), ``intent`` (about to be sent, or sent
without an answer yet: look it up at the broker before sending again), ``submitted`` (the
broker has it), and the final ``filled``, ``cancelled`` (nothing or part filled), ``rejected``
(by the broker), ``blocked`` (by a pre-trade check, never sent), ``skipped`` (kill switch or
stop, never sent).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Optional

FINAL = ("filled", "cancelled", "rejected", "blocked", "skipped")
OPEN = ("intent", "submitted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT, updated REAL);
CREATE TABLE IF NOT EXISTS decisions (
    decision TEXT PRIMARY KEY, run_id TEXT, status TEXT, equity REAL, started REAL,
    horizon REAL, created REAL, updated REAL, note TEXT, bar TEXT, config TEXT, config_parts TEXT,
    targets TEXT);
CREATE TABLE IF NOT EXISTS parents (
    decision TEXT, symbol TEXT, target REAL, position REAL, quantity REAL, arrival REAL,
    weight REAL, PRIMARY KEY (decision, symbol));
CREATE TABLE IF NOT EXISTS orders (
    ref TEXT PRIMARY KEY, decision TEXT, symbol TEXT, child INTEGER, quantity REAL,
    limit_price REAL, release_at REAL, expire_at REAL, status TEXT, order_id INTEGER,
    perm_id INTEGER, filled REAL DEFAULT 0, avg_price REAL, reason TEXT, created REAL,
    updated REAL, sent REAL, kind TEXT, terms TEXT);
CREATE INDEX IF NOT EXISTS orders_by_decision ON orders (decision, status);
CREATE TABLE IF NOT EXISTS fills (
    exec_id TEXT PRIMARY KEY, ref TEXT, symbol TEXT, quantity REAL, price REAL, time REAL,
    commission REAL, currency TEXT, order_id INTEGER, perm_id INTEGER, recorded REAL);
CREATE INDEX IF NOT EXISTS fills_by_ref ON fills (ref);
CREATE TABLE IF NOT EXISTS sends (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ref TEXT, order_id INTEGER, time REAL);
CREATE INDEX IF NOT EXISTS sends_by_order_id ON sends (order_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, ref TEXT, kind TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS positions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, snapshot REAL, symbol TEXT, quantity REAL);
"""


@dataclasses.dataclass
class Child:
    """A child order as the journal holds it."""

    ref: str
    decision: str
    symbol: str
    child: int
    quantity: float                 # signed: + buy, - sell
    limit_price: Optional[float]    # None: a market order
    release_at: float               # epoch seconds
    expire_at: float
    status: str = "planned"
    order_id: Optional[int] = None
    perm_id: Optional[int] = None
    filled: float = 0.0             # signed, like quantity
    avg_price: Optional[float] = None
    reason: Optional[str] = None
    kind: Optional[str] = None      # 'exit' for an exit order (pipeline.live.exits)
    terms: Optional[str] = None     # an exit's order terms, JSON

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclasses.dataclass
class Parent:
    decision: str
    symbol: str
    target: float      # shares wanted after the decision
    position: float    # shares held when the plan was made
    quantity: float    # target - position, in lots
    arrival: float     # price at the decision
    weight: float      # target weight


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """A journal from before decisions were keyed by their config (its keys are its bars),
        or from before exit orders (no kind, no terms)."""
        with self._tx():  # looked at inside the write lock: two processes opening it migrate once
            if "bar" not in {r["name"] for r in self.db.execute("PRAGMA table_info(decisions)")}:
                for column in ("bar", "config", "config_parts", "targets"):
                    self.db.execute(f"ALTER TABLE decisions ADD COLUMN {column} TEXT")
                self.db.execute("UPDATE decisions SET bar = decision")
                self.event("migrate", "decisions keyed by bar and config; earlier ones have no config")
            if "kind" not in {r["name"] for r in self.db.execute("PRAGMA table_info(orders)")}:
                for column in ("kind", "terms"):
                    self.db.execute(f"ALTER TABLE orders ADD COLUMN {column} TEXT")
                self.event("migrate", "orders have a kind (exit) and terms")

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ transactions
    def _tx(self):
        return _Transaction(self.db)

    # ------------------------------------------------------------ meta and state
    def meta(self, key: str) -> Optional[str]:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO state (key, value, updated) VALUES (?, ?, ?)",
                        (key, json.dumps(value), time.time()))

    def delete(self, key: str) -> None:
        self.db.execute("DELETE FROM state WHERE key = ?", (key,))

    def event(self, kind: str, detail: Any = "", ref: Optional[str] = None) -> None:
        text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
        self.db.execute("INSERT INTO events (ts, ref, kind, detail) VALUES (?, ?, ?, ?)",
                        (time.time(), ref, kind, text))

    def events(self, kind: Optional[str] = None) -> list[sqlite3.Row]:
        if kind is None:
            return self.db.execute("SELECT * FROM events ORDER BY id").fetchall()
        return self.db.execute("SELECT * FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()

    # ------------------------------------------------------------ decisions and plans
    def decision(self, decision: str) -> Optional[sqlite3.Row]:
        return self.db.execute("SELECT * FROM decisions WHERE decision = ?", (decision,)).fetchone()

    def last_decision(self, statuses: Iterable[str] = ("planned", "done", "skipped")) -> Optional[sqlite3.Row]:
        marks = ",".join("?" * len(tuple(statuses)))
        return self.db.execute(f"SELECT * FROM decisions WHERE status IN ({marks}) "
                               f"ORDER BY bar DESC, created DESC LIMIT 1", tuple(statuses)).fetchone()

    def decisions_at(self, bar: str) -> list[sqlite3.Row]:
        """Every decision taken on ``bar``, whatever its config, oldest first."""
        return self.db.execute("SELECT * FROM decisions WHERE bar = ? ORDER BY created", (bar,)).fetchall()

    def open_decisions(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM decisions WHERE status = 'planned' "
                               "ORDER BY decision").fetchall()

    def save_plan(self, decision: str, run_id: str, equity: float, started: float, horizon: float,
                  parents: list[Parent], children: list[Child], status: str = "planned",
                  note: str = "", bar: Optional[str] = None, config: Optional[str] = None,
                  config_parts: Optional[dict] = None, targets: Optional[dict[str, float]] = None) -> None:
        """The decision, its parents and every child in one transaction (all or nothing).
        ``bar`` defaults to ``decision``; ``config`` is the hash of ``config_parts``; ``targets``
        maps symbols to target weights."""
        now = time.time()
        with self._tx():
            self.db.execute("INSERT INTO decisions (decision, run_id, status, equity, started, horizon, "
                            "created, updated, note, bar, config, config_parts, targets) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (decision, run_id, status, equity, started, horizon, now, now, note,
                             bar or decision, config,
                             None if config_parts is None else json.dumps(config_parts, sort_keys=True),
                             None if targets is None else json.dumps(targets, sort_keys=True)))
            self.db.executemany(
                "INSERT INTO parents (decision, symbol, target, position, quantity, arrival, weight) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(p.decision, p.symbol, p.target, p.position, p.quantity, p.arrival, p.weight)
                 for p in parents])
            self._insert_children(children, now)
            self.event("plan", {"decision": decision, "parents": len(parents), "children": len(children),
                                "status": status, "note": note})

    def add_children(self, children: list[Child]) -> None:
        with self._tx():
            self._insert_children(children, time.time())
            for c in children:
                self.event("planned", {"quantity": c.quantity, "limit": c.limit_price, "why": c.reason},
                           ref=c.ref)

    def _insert_children(self, children: list[Child], now: float) -> None:
        self.db.executemany(
            "INSERT INTO orders (ref, decision, symbol, child, quantity, limit_price, release_at, "
            "expire_at, status, filled, reason, created, updated, kind, terms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            [(c.ref, c.decision, c.symbol, c.child, c.quantity, c.limit_price, c.release_at,
              c.expire_at, c.status, c.reason, now, now, c.kind, c.terms) for c in children])

    def finish_decision(self, decision: str, status: str = "done", note: str = "") -> None:
        self.db.execute("UPDATE decisions SET status = ?, updated = ?, note = ? WHERE decision = ?",
                        (status, time.time(), note, decision))
        self.event("decision", {"decision": decision, "status": status, "note": note})

    def reschedule(self, refs_times: list[tuple[str, float, float]]) -> None:
        with self._tx():
            self.db.executemany("UPDATE orders SET release_at = ?, expire_at = ? WHERE ref = ?",
                                [(r, e, ref) for ref, r, e in refs_times])

    def parents(self, decision: str) -> list[Parent]:
        rows = self.db.execute("SELECT * FROM parents WHERE decision = ? ORDER BY symbol",
                               (decision,)).fetchall()
        return [Parent(**{k: r[k] for k in r.keys()}) for r in rows]

    def children(self, decision: Optional[str] = None) -> list[Child]:
        """Every order (exits too), or a decision's children (exits, which outlive it, not)."""
        if decision is None:
            rows = self.db.execute("SELECT * FROM orders ORDER BY release_at, ref").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM orders WHERE decision = ? AND kind IS NULL "
                                   "ORDER BY release_at, ref", (decision,)).fetchall()
        return [_child(r) for r in rows]

    def exits(self, symbol: Optional[str] = None) -> list[Child]:
        """Exit orders, oldest first (of ``symbol``, or all)."""
        rows = self.db.execute("SELECT * FROM orders WHERE kind = 'exit' AND (? IS NULL OR symbol = ?) "
                               "ORDER BY created, ref", (symbol, symbol)).fetchall()
        return [_child(r) for r in rows]

    def resize(self, ref: str, quantity: float, terms: Optional[str] = None) -> None:
        """An exit's new size (a rebalance changed its position) and terms (re-priced to its
        entry's fill), before the broker is told."""
        with self._tx():
            self.db.execute("UPDATE orders SET quantity = ?, terms = COALESCE(?, terms), updated = ? "
                            "WHERE ref = ?", (quantity, terms, time.time(), ref))
            self.event("resize", {"quantity": quantity, "terms": terms}, ref=ref)

    def child(self, ref: str) -> Optional[Child]:
        row = self.db.execute("SELECT * FROM orders WHERE ref = ?", (ref,)).fetchone()
        return None if row is None else _child(row)

    # ------------------------------------------------------------ order lifecycle
    def mark(self, ref: str, status: str, reason: Optional[str] = None, **fields: Any) -> None:
        """Set a child's status (and broker ids, fills, reason) with an event, atomically."""
        sets = ["status = ?", "updated = ?"]
        values: list[Any] = [status, time.time()]
        if reason is not None:
            sets.append("reason = ?")
            values.append(reason)
        for key in ("order_id", "perm_id", "filled", "avg_price", "sent"):
            if key in fields and fields[key] is not None:
                sets.append(f"{key} = ?")
                values.append(fields[key])
        with self._tx():
            self.db.execute(f"UPDATE orders SET {', '.join(sets)} WHERE ref = ?", (*values, ref))
            self.event(status, {"reason": reason, **{k: v for k, v in fields.items() if v is not None}},
                       ref=ref)

    def intent(self, ref: str, order_id: int, when: float) -> None:
        """The child is about to be handed to the broker as order ``order_id`` (one transaction)."""
        with self._tx():
            self.mark(ref, "intent", sent=when, order_id=order_id)
            self.db.execute("INSERT INTO sends (ref, order_id, time) VALUES (?, ?, ?)", (ref, order_id, when))

    def not_sent(self, ref: str, order_id: int, reason: str) -> None:
        """The broker refused to take it (not connected): back to ``planned``, no send counted."""
        with self._tx():
            self.db.execute("DELETE FROM sends WHERE ref = ? AND order_id = ?", (ref, order_id))
            self.mark(ref, "planned", reason=reason)

    def sends(self, ref: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM sends WHERE ref = ?", (ref,)).fetchone()[0]

    def ref_for(self, order_id: Optional[int] = None, perm_id: Optional[int] = None) -> Optional[str]:
        """The child an order or execution without orderRef belongs to: by its perm id (known
        once acknowledged or filled), else by an order id it was sent with (the latest send)."""
        if perm_id:
            row = self.db.execute("SELECT ref FROM orders WHERE perm_id = ? UNION ALL "
                                  "SELECT ref FROM fills WHERE perm_id = ? AND ref != '' LIMIT 1",
                                  (perm_id, perm_id)).fetchone()
            if row is not None:
                return row[0]
        if order_id:
            row = self.db.execute("SELECT ref FROM sends WHERE order_id = ? ORDER BY id DESC LIMIT 1",
                                  (order_id,)).fetchone()
            if row is not None:
                return row[0]
        return None

    # ------------------------------------------------------------ fills
    def add_fill(self, exec_id: str, ref: str, symbol: str, quantity: float, price: float,
                 when: float, commission: Optional[float] = None, currency: str = "",
                 order_id: Optional[int] = None, perm_id: Optional[int] = None) -> bool:
        """Record an execution once (by id); True when it is new. Updates the child's filled
        quantity and average price from all of its fills."""
        with self._tx():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO fills (exec_id, ref, symbol, quantity, price, time, commission, "
                "currency, order_id, perm_id, recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (exec_id, ref, symbol, quantity, price, when, commission, currency, order_id, perm_id,
                 time.time()))
            new = cur.rowcount == 1
            if new:
                total = self.db.execute("SELECT SUM(quantity), SUM(quantity * price) FROM fills "
                                        "WHERE ref = ?", (ref,)).fetchone()
                if total[0]:
                    self.db.execute("UPDATE orders SET filled = ?, avg_price = ?, updated = ? WHERE ref = ?",
                                    (total[0], total[1] / total[0], time.time(), ref))
                self.event("fill", {"exec_id": exec_id, "quantity": quantity, "price": price}, ref=ref)
            elif commission is not None:
                self.db.execute("UPDATE fills SET commission = ? WHERE exec_id = ? AND commission IS NULL",
                                (commission, exec_id))
        return new

    def set_commission(self, exec_id: str, commission: float, currency: str = "") -> None:
        self.db.execute("UPDATE fills SET commission = ?, currency = ? WHERE exec_id = ?",
                        (commission, currency, exec_id))

    def fills(self, decision: Optional[str] = None, entries: bool = False) -> list[sqlite3.Row]:
        """Every fill, or a decision's (with ``entries``, of its children only: no exit's)."""
        if decision is None:
            return self.db.execute("SELECT * FROM fills ORDER BY time, exec_id").fetchall()
        only = " AND o.kind IS NULL" if entries else ""
        return self.db.execute("SELECT f.* FROM fills f JOIN orders o ON o.ref = f.ref WHERE "
                               f"o.decision = ?{only} ORDER BY f.time, f.exec_id", (decision,)).fetchall()

    def exec_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT exec_id FROM fills")}

    # ------------------------------------------------------------ positions
    def snapshot_positions(self, positions: dict[str, float]) -> None:
        now = time.time()
        with self._tx():
            self.db.executemany("INSERT INTO positions (ts, snapshot, symbol, quantity) VALUES (?, ?, ?, ?)",
                                [(now, now, s, q) for s, q in sorted(positions.items())] or
                                [(now, now, "", 0.0)])


def _child(row: sqlite3.Row) -> Child:
    return Child(ref=row["ref"], decision=row["decision"], symbol=row["symbol"], child=row["child"],
                 quantity=row["quantity"], limit_price=row["limit_price"], release_at=row["release_at"],
                 expire_at=row["expire_at"], status=row["status"], order_id=row["order_id"],
                 perm_id=row["perm_id"], filled=row["filled"] or 0.0, avg_price=row["avg_price"],
                 reason=row["reason"], kind=row["kind"], terms=row["terms"])


class _Transaction:
    """``BEGIN IMMEDIATE`` .. ``COMMIT`` (rollback on error); nests as a no-op."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.outer = False

    def __enter__(self):
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True
        return self

    def __exit__(self, kind, exc, tb):
        if self.outer:
            self.db.execute("ROLLBACK" if kind else "COMMIT")
        return False
