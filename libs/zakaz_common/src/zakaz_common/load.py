"""Loading facts: stage a run's rows, then publish them into the fact in one server-side step.

Every fact is a `ReplacingMergeTree(_ver, _deleted)`. Publishing a run:
- aggregates the staged rows per key (additive columns add up, attributes take the last row),
- writes only keys whose content hash differs from the live row (an unchanged re-run writes
  nothing),
- tombstones live keys inside the run's scope that the run did not see (a reload replaces).

Both happen in a single `INSERT … SELECT`, so the warehouse never holds half a publish of the
new rows without its retractions. Rows stream to staging in bounded blocks, so memory stays flat
however large the upstream is.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from clickhouse_connect.driver.exceptions import DataError

from zakaz_common import clock
from zakaz_common.clickhouse import INSERT_BATCH_ROWS, Warehouse
from zakaz_common.errors import ConfigError, LoadError
from zakaz_common.normalize import preview

_DATA_CODES: Final = frozenset({6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 321, 407})
"""ClickHouse error codes that mean a value of the block is wrong (cannot parse, type mismatch,
out of range, decimal overflow, string too large), not that the warehouse failed."""

_QUOTED: Final = re.compile(r"'[^']*'|\"[^\"]*\"")
"""Quoted parts of an error message, which may quote the refused value (no raw data in reasons)."""

_SUMMARY_MAX: Final = 160
"""How much of the warehouse's error a reject's reason keeps."""

REFUSED_MAX: Final = 1000
"""Refused rows one stager rejects before it fails the run instead: that many is a systematic
fault (a column of the wrong type), not bad values, and bisecting it would cost an insert a row."""


@dataclass(frozen=True)
class FactSpec:
    """How one fact table is loaded: its staging table, key, and how columns combine."""

    fact: str
    staging: str
    key: tuple[str, ...]
    #: Columns that add up when several staged rows share a key (sheet rows, baskets).
    summed: tuple[str, ...] = ()
    #: Columns taken from the last staged row of a key.
    latest: tuple[str, ...] = ()
    #: The business-date column that `--since/--to` narrow (None: the fact has no dates).
    date_column: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every business column, key first."""
        return self.key + self.summed + self.latest

    @property
    def values(self) -> tuple[str, ...]:
        """Non-key business columns (what the content hash covers)."""
        return self.summed + self.latest


@dataclass(frozen=True)
class Scope:
    """Which live keys a load speaks for: keys in scope that the load did not see are retracted."""

    equals: Mapping[str, Sequence[str]] = field(default_factory=dict)
    excluded: Mapping[str, Sequence[str]] = field(default_factory=dict)
    since: date | None = None
    to: date | None = None

    def sql(self, spec: FactSpec, params: dict[str, Any]) -> str:
        """A WHERE condition for this scope, adding its values to `params`."""
        parts = ["1"]
        for i, (column, values) in enumerate(sorted(self.equals.items())):
            params[f"scope_eq{i}"] = [str(v) for v in values]
            parts.append(f"{_ident(column)} IN {{scope_eq{i}:Array(String)}}")
        for i, (column, values) in enumerate(sorted(self.excluded.items())):
            params[f"scope_ex{i}"] = [str(v) for v in values]
            parts.append(f"{_ident(column)} NOT IN {{scope_ex{i}:Array(String)}}")
        if self.since is not None or self.to is not None:
            if spec.date_column is None:
                raise ConfigError(f"{spec.fact} has no date column to narrow by --since/--to")
            if self.since is not None:
                params["scope_since"] = self.since
                parts.append(f"{_ident(spec.date_column)} >= {{scope_since:Date}}")
            if self.to is not None:
                params["scope_to"] = self.to
                parts.append(f"{_ident(spec.date_column)} <= {{scope_to:Date}}")
        return " AND ".join(parts)


#: Most held-back keys one publish of a fact matches as lists; past it the fact is not published
#: at all in this run (so many rejected rows mean something upstream broke, and the fact keeps
#: its last good state whole rather than a guess at which keys were touched).
HELD_KEYS_LIMIT: Final = 50_000

_KEY_SEP: Final = "\x1f"
"""Joins key columns into one text; a control character, which the field readers refuse."""


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote: changed or new keys, keys retracted, and keys held back."""

    upserted: int
    retracted: int
    #: Live keys kept at their last good value because a rejected row of this run may be theirs.
    held: int = 0
    #: The business dates of the held keys (ISO text), for the operator's alert.
    held_dates: tuple[str, ...] = ()
    #: True when so many keys were held back that the fact was not published at all.
    withheld: bool = False

    @property
    def written(self) -> int:
        """Fact rows written in all (0 for an unchanged re-run)."""
        return self.upserted + self.retracted


@dataclass(frozen=True)
class Reject:
    """A row that could not be read: the row as received (PII removed) and why.

    `facts` names the facts the row would have fed and `key` the columns of their key that
    could still be read from it (any subset, values as staged). Publishing a run holds back
    every live key of those facts that the reject might be: such a key is neither retracted
    nor overwritten, so a rejected row never deletes or shrinks a good value already loaded.
    A reject with `facts` but no readable key column holds back the whole scope of the fact.
    """

    entity: str
    raw: Mapping[str, Any] | Sequence[Any] | str
    reason: str
    key: Mapping[str, Any] | None = None
    facts: tuple[str, ...] = ()


class HeldKeys:
    """The keys of a run's rejected rows, per fact: what its publishes must leave as they are."""

    def __init__(self) -> None:
        self._by_fact: dict[str, list[Mapping[str, Any]]] = defaultdict(list)

    def add(self, reject: Reject) -> None:
        """Hold back, in every fact the reject names, the keys it might be."""
        for fact in reject.facts:
            self._by_fact[fact].append(dict(reject.key or {}))

    def facts(self) -> frozenset[str]:
        """The facts that have held keys."""
        return frozenset(self._by_fact)

    def for_fact(self, fact: str) -> list[Mapping[str, Any]]:
        """The held keys of one fact (each a mapping of the key columns that were read)."""
        return list(self._by_fact.get(fact, ()))


@dataclass(frozen=True)
class _Holds:
    """Held keys of one publish as SQL: whole keys, and keys of which only some columns are known."""

    #: Whole keys: neither overwritten nor retracted.
    whole: str
    #: Keys that may be a rejected row's: not retracted.
    any: str
    #: How many held values in all (for the limit).
    size: int


def _holds(spec: FactSpec, held: Sequence[Mapping[str, Any]], params: dict[str, Any]) -> _Holds:
    whole: set[str] = set()
    partial: dict[tuple[str, ...], set[str]] = defaultdict(set)
    everything = False
    for key in held:
        known = tuple(c for c in spec.key if c in key and key[c] is not None)
        if not known:
            everything = True
        elif len(known) == len(spec.key):
            whole.add(_key_text(key[c] for c in known))
        else:
            partial[known].add(_key_text(key[c] for c in known))
    params["held_whole"] = sorted(whole)
    whole_sql = f"{_key_sql(spec.key)} IN {{held_whole:Array(String)}}" if whole else "0"
    parts = [whole_sql]
    for i, (columns, values) in enumerate(sorted(partial.items())):
        params[f"held_part{i}"] = sorted(values)
        parts.append(f"{_key_sql(columns)} IN {{held_part{i}:Array(String)}}")
    any_sql = "1" if everything else " OR ".join(parts)
    size = len(whole) + sum(len(v) for v in partial.values())
    return _Holds(whole=whole_sql, any=f"({any_sql})", size=size)


def _key_sql(columns: Sequence[str]) -> str:
    texts = [f"toString({_ident(c)})" for c in columns]
    return texts[0] if len(texts) == 1 else f"concat({', {sep:String}, '.join(texts)})"


def _key_text(values: Iterable[Any]) -> str:
    """A key as `_key_sql` renders it: dates in ISO form, numbers and text as they print."""
    return _KEY_SEP.join(v.isoformat() if isinstance(v, date) else str(v) for v in values)


class Stager:
    """Streams one run's rows into a staging table in bounded columnar blocks."""

    def __init__(
        self,
        wh: Warehouse,
        spec: FactSpec,
        run_id: str,
        loaded_at: int,
        *,
        batch_rows: int = INSERT_BATCH_ROWS,
        extra: tuple[str, ...] = (),
        on_reject: Callable[[Reject], object] | None = None,
        refused_max: int = REFUSED_MAX,
    ) -> None:
        self._wh = wh
        self._refused_max = refused_max
        #: Where rows the warehouse refuses go; None: a refused block fails the run.
        self._on_reject = on_reject
        self._spec = spec
        self._run_id = run_id
        self._loaded_at = loaded_at
        self._batch_rows = batch_rows
        #: Staging-only columns every row also carries (not part of the fact).
        self._columns = spec.columns + extra
        self._buffer: dict[str, list[Any]] = {c: [] for c in self._columns}
        self._seq = 0
        self._refused_rows = 0

    @property
    def staged(self) -> int:
        """Rows handed to the stager so far."""
        return self._seq

    def add(self, row: Mapping[str, Any]) -> None:
        """Queue one row (a mapping with every column of the spec)."""
        for column, values in self._buffer.items():
            values.append(row[column])
        self._seq += 1
        if len(self._buffer[self._spec.key[0]]) >= self._batch_rows:
            self.flush()

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Queue many rows."""
        for row in rows:
            self.add(row)

    def flush(self) -> None:
        """Write what is queued.

        When the warehouse refuses the block for a value in it (and there is `on_reject`), the
        block is split in halves until the refused rows are alone: the others are staged, each
        refused row becomes a `Reject` naming the column when the error does.
        """
        pending = len(self._buffer[self._spec.key[0]])
        if pending == 0:
            return
        buffer, self._buffer = self._buffer, {c: [] for c in self._columns}
        self._insert(buffer, self._seq - pending, 0, pending)

    def _insert(self, buffer: Mapping[str, list[Any]], first: int, start: int, stop: int) -> None:
        count = stop - start
        data: dict[str, Sequence[Any]] = {
            "run_id": [self._run_id] * count,
            "_seq": range(first + start, first + stop),
            "loaded_at": [self._loaded_at] * count,
        }
        data.update({c: v[start:stop] for c, v in buffer.items()})
        try:
            self._wh.insert_columns(self._spec.staging, data)
        except (LoadError, TypeError, ValueError, ArithmeticError) as exc:
            if self._on_reject is None or not _refused_value(exc):
                raise
            if count == 1:
                self._refused_rows += 1
                if self._refused_rows > self._refused_max:
                    raise LoadError(
                        f"the warehouse refused more than {self._refused_max} rows of "
                        f"{self._spec.staging}: {self._refused(buffer, start, exc).reason}"
                    ) from exc
                self._on_reject(self._refused(buffer, start, exc))
                return
            middle = start + count // 2
            self._insert(buffer, first, start, middle)
            self._insert(buffer, first, middle, stop)

    def _refused(self, buffer: Mapping[str, list[Any]], index: int, exc: BaseException) -> Reject:
        row = {c: v[index] for c, v in buffer.items()}
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if not isinstance(exc, LoadError):
            # The driver's own errors arrive untranslated (it checks values as it encodes them).
            text = f"{type(exc).__name__}: {text}"
        named = [c for c in self._columns if re.search(rf"\b{re.escape(c)}\b", text)]
        summary = _QUOTED.sub("'…'", text)[:_SUMMARY_MAX]
        where = f"{named[0]}: " if named else ""
        return Reject(
            self._spec.staging,
            {c: preview(v) for c, v in row.items()},
            f"{where}the warehouse refused the value ({summary})",
            key={c: row[c] for c in self._spec.key if c not in named},
            facts=(self._spec.fact,),
        )


def _refused_value(exc: BaseException) -> bool:
    """Whether an insert failed on a value of the block (not because the warehouse failed)."""
    if isinstance(exc, LoadError):
        return isinstance(exc.__cause__, DataError) or exc.code in _DATA_CODES
    return True


def stage(
    wh: Warehouse,
    spec: FactSpec,
    run_id: str,
    rows: Iterable[Mapping[str, Any]],
    loaded_at: int,
    *,
    on_reject: Callable[[Reject], object] | None = None,
) -> int:
    """Stage rows for a run; returns how many were handed over (refused ones included)."""
    stager = Stager(wh, spec, run_id, loaded_at, on_reject=on_reject)
    stager.extend(rows)
    stager.flush()
    return stager.staged


def carry_staged(
    wh: Warehouse,
    spec: FactSpec,
    *,
    from_run: str,
    to_run: str,
    loaded_at: int,
    tag: str,
    values: Sequence[str],
    seq_offset: int,
    lookups: Mapping[str, tuple[str, Mapping[str, str]]] | None = None,
) -> int:
    """Copy the staged rows of `from_run` whose `tag` column is in `values` into `to_run`.

    This is how a run takes over what an earlier run staged from upstream pages that have not
    changed since, without reading them again. Copied rows get `_seq` numbers after `seq_offset`
    (the rows this run staged itself). `lookups` re-derives attribute columns from this run's
    knowledge: `{column: (key_column, mapping)}` sets `column` to `mapping[key_column]` (empty
    when the key is not in the mapping), so a renamed event is not carried under its old name.
    Returns how many rows were copied.
    """
    if not values:
        return 0
    params: dict[str, Any] = {
        "from_run": from_run,
        "to_run": to_run,
        "loaded_at": loaded_at,
        "values": list(values),
        "offset": seq_offset,
    }
    chosen = []
    for column in spec.columns:
        if lookups and column in lookups:
            chosen.append(lookup(*lookups[column], params))
        else:
            chosen.append(_ident(column))
    cols = ", ".join(_ident(c) for c in spec.columns)
    tagged = _ident(tag)
    before = wh.scalar(
        f"SELECT count() FROM {spec.staging} WHERE run_id = {{to_run:String}}", params
    )
    wh.command(
        f"""
        INSERT INTO {spec.staging} (run_id, _seq, loaded_at, {tagged}, {cols})
        SELECT {{to_run:String}}, {{offset:UInt64}} + _seq, {{loaded_at:UInt32}}, {tagged},
               {", ".join(chosen)}
        FROM {spec.staging}
        WHERE run_id = {{from_run:String}} AND {tagged} IN {{values:Array(String)}}
        """,
        params,
    )
    after = wh.scalar(
        f"SELECT count() FROM {spec.staging} WHERE run_id = {{to_run:String}}", params
    )
    return int(after or 0) - int(before or 0)


def lookup(key_column: str, mapping: Mapping[str, str], params: dict[str, Any]) -> str:
    """SQL for `mapping[key_column]` ('' for a key not in it), its arrays added to `params`."""
    name = f"lookup{len(params)}"
    params[f"{name}_keys"] = list(mapping)
    params[f"{name}_values"] = [mapping[k] for k in mapping]
    return (
        f"transform({_ident(key_column)}, {{{name}_keys:Array(String)}}, "
        f"{{{name}_values:Array(String)}}, '')"
    )


def publish(
    wh: Warehouse,
    spec: FactSpec,
    run_id: str,
    scope: Scope,
    *,
    loaded_at: int | None = None,
    retract: bool = True,
    held: Sequence[Mapping[str, Any]] = (),
) -> PublishResult:
    """Publish a run's staged rows into the fact: upsert changed keys, retract missing ones.

    `held` are the keys of this run's rejected rows (see `Reject`): a whole key keeps its live
    row as it is (a key with no live row yet gets its readable rows), and no live key that a
    held key (whole or partial) might be is retracted.
    """
    ver = time.time_ns()
    params: dict[str, Any] = {
        "run_id": run_id,
        "ver": ver,
        "loaded_at": int(loaded_at if loaded_at is not None else clock.now()),
        "sep": _KEY_SEP,
    }
    holds = _holds(spec, held, params) if held else None
    key = ", ".join(_ident(c) for c in spec.key)
    cols = ", ".join(_ident(c) for c in spec.columns)
    aggs = [_ident(c) for c in spec.key]
    aggs += [f"sum({_ident(c)}) AS {_ident(c)}" for c in spec.summed]
    aggs += [f"argMax({_ident(c)}, _seq) AS {_ident(c)}" for c in spec.latest]
    hashed = ", ".join(_ident(c) for c in spec.values) or "1"
    scope_sql = scope.sql(spec, params)
    # Grouped first: the set is then built from one row per key, not one per staged row.
    staged_keys = (
        f"SELECT {key} FROM {spec.staging} WHERE run_id = {{run_id:String}} GROUP BY {key}"
    )
    if spec.date_column is not None and spec.date_column in spec.key:
        # Any live row a staged key could match lies within the staged dates: this range
        # selects them without grouping the staged rows a second time.
        day = _ident(spec.date_column)
        staged = f"FROM {spec.staging} WHERE run_id = {{run_id:String}}"
        matching = f"{day} BETWEEN (SELECT min({day}) {staged}) AND (SELECT max({day}) {staged})"
    else:
        matching = f"({key}) IN ({staged_keys})"
    # A held key with a live row keeps it; a new one gets what could be read of it (there is
    # no good value to keep, and its readable rows are information, not a loss).
    kept_whole = (
        f"AND NOT ({holds.whole} AND ({key}) IN "
        f"(SELECT {key} FROM {spec.fact} FINAL WHERE {matching}))"
        if holds
        else ""
    )
    kept_any = f"AND NOT {holds.any}" if holds else ""
    held_count: tuple[int, tuple[str, ...]] = (0, ())
    if holds is not None:
        held_count = _count_held(wh, spec, holds, scope_sql, staged_keys, retract, params)
        if holds.size > HELD_KEYS_LIMIT:
            return PublishResult(0, 0, held=held_count[0], held_dates=held_count[1], withheld=True)
    sql = f"""
        INSERT INTO {spec.fact} ({cols}, row_hash, run_id, loaded_at, _ver, _deleted)
        SELECT {cols}, row_hash, {{run_id:String}}, {{loaded_at:UInt32}}, {{ver:UInt64}}, 0
        FROM
        (
            SELECT {", ".join(aggs)}, cityHash64(toString(tuple({hashed}))) AS row_hash
            FROM {spec.staging}
            WHERE run_id = {{run_id:String}}
            GROUP BY {key}
        )
        WHERE ({key}, row_hash) NOT IN
        (
            SELECT {key}, row_hash FROM {spec.fact} FINAL WHERE {matching}
        ) {kept_whole}
    """
    if retract:
        sql += f"""
        UNION ALL
        SELECT {cols}, row_hash, {{run_id:String}}, {{loaded_at:UInt32}}, {{ver:UInt64}}, 1
        FROM {spec.fact} FINAL
        WHERE {scope_sql} AND ({key}) NOT IN ({staged_keys}) {kept_any}
        """
    wh.command(sql, params)
    counts = wh.rows(
        f"SELECT countIf(_deleted = 0), countIf(_deleted = 1) FROM {spec.fact} "
        "WHERE _ver = {ver:UInt64} AND run_id = {run_id:String}",
        {"ver": ver, "run_id": run_id},
    )
    upserted, retracted = counts[0] if counts else (0, 0)
    return PublishResult(
        upserted=int(upserted),
        retracted=int(retracted),
        held=held_count[0],
        held_dates=held_count[1],
    )


def _count_held(
    wh: Warehouse,
    spec: FactSpec,
    holds: _Holds,
    scope_sql: str,
    staged_keys: str,
    retract: bool,
    params: dict[str, Any],
) -> tuple[int, tuple[str, ...]]:
    """Live keys a publish leaves as they are because of held keys, and their dates."""
    key = ", ".join(_ident(c) for c in spec.key)
    # A whole held key keeps its row anywhere; a partial one only stops a retraction in scope.
    kept = holds.whole
    if retract:
        kept = f"({kept} OR ({scope_sql} AND {holds.any} AND ({key}) NOT IN ({staged_keys})))"
    day = f"toString({_ident(spec.date_column)})" if spec.date_column else "''"
    found = wh.rows(
        f"SELECT count(), arraySort(groupUniqArray(100)({day})) "
        f"FROM {spec.fact} FINAL WHERE {kept}",
        params,
    )
    count, dates = found[0] if found else (0, [])
    return int(count), tuple(d for d in dates if d)


def record_rejects(wh: Warehouse, run_id: str, source: str, rejects: Sequence[Reject]) -> int:
    """Store rejected rows with their reasons; returns how many."""
    if not rejects:
        return 0
    now = int(clock.now())
    rows = [(now, run_id, source, r.entity, _raw_text(r.raw), r.reason[:1000]) for r in rejects]
    return wh.insert("rejects", rows, ["loaded_at", "run_id", "source", "entity", "raw", "reason"])


def _raw_text(raw: Mapping[str, Any] | Sequence[Any] | str) -> str:
    if isinstance(raw, str):
        return raw[:4000]
    return json.dumps(raw, ensure_ascii=False, default=str)[:4000]


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"{name!r} is not a column name")
    return f"`{name}`"
