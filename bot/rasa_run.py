"""``python -m bot.rasa_run run ...``: the ``rasa`` command with speed fixes (rasa venv only).

Profiling the benchmark (``python -m bot.bench``, py-spy on the rasa process) showed that rasa
3.6 spent about 28 % of its time in ``RemoteAction._validate_action_result``: for every custom
action call it runs ``jsonschema.validate(result, schema)``, and ``jsonschema.validate`` first
checks the *schema itself* against the JSON Schema 2020-12 meta-schema — about 40 ms per call
with jsonschema 4.17 (``validators.validate`` calls ``cls.check_schema(schema)`` every time; see
https://python-jsonschema.readthedocs.io/en/stable/validate/ "validate() … first verifies that
the provided schema is valid"). The schema (``RemoteAction.action_response_format_spec()``) is a
constant, so here it is checked once and one validator is reused: the same action responses are
accepted and rejected, with the same ``ValidationError`` message, at about 1-2 ms per call.

Second fix: each message makes rasa commit to the SQLite tracker store, and with SQLite's
defaults (rollback journal, ``synchronous=FULL``) every commit waits for fsync — 11-12 % of rasa's
time in the same profile. SQLite connections opened by rasa's SQLAlchemy engine get
``journal_mode=WAL`` and ``synchronous=NORMAL``: in WAL mode this is still safe when a process
crashes or is killed (committed transactions survive; only an OS crash / power cut may lose the
last ones, never corrupting the file) — https://www.sqlite.org/pragma.html#pragma_synchronous and
https://www.sqlite.org/wal.html. PostgreSQL tracker stores are not touched.

Third fix: SQLAlchemy 1.4 gives file-based SQLite engines a ``NullPool``, so rasa opened and closed
a SQLite connection for every tracker read and write; closing the last connection of a WAL
database also checkpoints and deletes the WAL file. That was 7-8 % of rasa's CPU in the profile
(``_close_connection`` 5.2 %, ``connect`` 2.3 %). Rasa's ``create_engine_kwargs`` (kwargs for the
tracker store's ``create_engine``) returns nothing for SQLite; here it returns a ``QueuePool`` (the
default of SQLAlchemy 2.0 for SQLite files, with ``check_same_thread=False`` as its docs
prescribe: https://docs.sqlalchemy.org/en/14/dialects/sqlite.html#threading-pooling-behavior),
so connections are reused. Other processes (another replica, ``python -m bot purge``) still see
every commit: WAL readers and writers in separate processes coordinate through the WAL index.

Fourth fix: ``EndpointConfig.request`` (every custom action call) opened a new ``aiohttp``
``ClientSession``, hence a new TCP connection to the action server, and closed both after the
reply: 6.4 % of rasa's CPU in a later profile (``ClientSession.__aenter__``/connect), plus the
action server's cost of accepting each connection. Here each endpoint keeps one session per event
loop, whose connections are reused (HTTP keep-alive). Idle connections are dropped after
:data:`KEEPALIVE_S` seconds, below the 5 s after which the action server (Sanic's
``KEEP_ALIVE_TIMEOUT``) closes them, so a request is never sent on a connection the server is
closing. A connection broken by an action server restart is noticed by ``aiohttp`` when the peer
closes it and is not reused; headers, auth, timeouts and error handling are rasa's own.

Fifth fix: every event read from the tracker store or the action server is turned into its class by
``Event.resolve_by_type``, which walks all subclasses of ``Event`` each time (``all_subclasses``):
2.3 % of rasa's CPU. The class found for a type name is remembered.

Sixth fix: the SQL tracker store read the whole current session of a conversation (one query, one
ORM object and one ``json.loads`` per event) for every message, and counted the stored events (a
second query) before every save: 24 % of rasa's CPU together. :func:`install_tracker_cache`
keeps the stored events (their JSON text, exactly as in the database) of recent conversations and
checks with one small query (the conversation's number of events and highest event id) that the
database still holds exactly those; only then are they reused. See its docstring for why this
stays correct with several rasa replicas and ``python -m bot purge``.

Seventh fix: rasa runs its graphs (the NLU pipeline for each message, the policies for each
prediction) with ``DaskGraphRunner.run``, which rebuilds the minimal schema and the dask graph and
lets dask's synchronous scheduler order the tasks anew on every call (``dask.order``,
``get_dependencies``): 13-14 % of rasa's CPU. :func:`install_graph_run_plan` computes the order
once per set of targets and calls the same graph nodes in it, with the same inputs.

Eighth to tenth fixes (a py-spy profile of the agent handling the benchmark's conversations):
``jsonschema`` still spent about 0.5 ms per action response trying each of the 23 ``oneOf``
branches of rasa's event schema for every event (7.5 % of rasa's CPU); the branches are told
apart by the ``event`` name, so :func:`install_cached_action_validation` first checks each event
against its own branch only and leaves every doubtful or invalid response to the full validator.
DIET and the ResponseSelector join each message's sparse features with ``scipy.sparse.hstack``
(``Features._combine_sparse_features``), whose generic ``bmat`` costs about 0.1 ms per join and 12
joins per message (8 % of rasa's CPU): :func:`install_sparse_feature_join` joins two COO matrices
directly. Each TensorFlow prediction went through ``tf.function``'s signature matching and input
casting (13 % of rasa's CPU): :func:`install_tf_concrete_predict` calls the one concrete function
rasa's input signature already defines, with the batch already converted to its flat tensors.

Eleventh fix: a rasa process with the model loaded holds about 940,000 objects tracked by Python's
garbage collector, and a full (generation 2) collection walks all of them: 0.5-0.8 s here, during
which that replica answers nobody. Python starts one whenever the objects that survived younger
collections exceed a quarter of the long-lived ones, so under load every replica stalls now and
then (about once per replica in one ``make bench``), and every message queued there waits.
:func:`install_gc_freeze_after_load` moves everything alive once the server has loaded the model
into the permanent generation (``gc.freeze()``,
https://docs.python.org/3/library/gc.html#gc.freeze), so later collections only walk objects
created while serving.

Twelfth fix: :func:`install_tracker_cache` also hands the tracker object it saved last to the next
read of that conversation, once, when the database and the object still hold exactly the saved
events, instead of replaying the stored JSON into a new tracker.

Everything else is ``rasa``'s own command line (``rasa.__main__.main``), unchanged.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional, Text

#: Seconds an idle keep-alive connection to an endpoint (the action server) is kept open.
KEEPALIVE_S = 2.0
#: Conversations whose stored events each rasa process keeps (:func:`install_tracker_cache`);
#: a 4-turn conversation's session is about 30 events, 20-60 KB of JSON text.
TRACKER_CACHE_CONVERSATIONS = 1000


def install_cached_action_validation() -> None:
    """Replace ``RemoteAction._validate_action_result`` by one using validators built once.

    Rasa's schema (``RemoteAction.action_response_format_spec()``) checks each event against a
    ``oneOf`` of 23 branches, one per event name (``properties.event.const``). A response is first
    checked by a quick path: the response without its events' ``oneOf``, then each event against
    the branch named by its ``event`` only. That is the same verdict as ``oneOf`` (exactly one
    branch valid) because the other branches' ``const`` cannot match. Any response the quick path
    does not accept goes to the full validator, so rejections and their messages are rasa's own.
    If a future rasa schema's branches were not told apart by distinct names, only the full
    validator is used. Cost per response (the benchmark's action responses): about 0.07 ms quick,
    0.5 ms full.

    Raises:
        jsonschema.SchemaError: never in practice (rasa's constant schema is valid).
    """
    from jsonschema import ValidationError, validators
    from rasa.core.actions import action
    from rasa.shared.constants import DOCS_BASE_URL

    schema = action.RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)  # once, instead of once per action call
    validator = validator_class(schema)
    is_valid_quick = _quick_events_validator(schema, validator_class)

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        """As rasa 3.6: True when valid, else ValidationError with rasa's message suffix."""
        if is_valid_quick is not None and is_valid_quick(result):
            return True
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (
                f". Failed to validate Action server response from API, "
                f"make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise e

    action.RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


def _quick_events_validator(schema: Dict[Text, Any], validator_class: Any) -> Optional[Any]:
    """``is_valid(result) -> bool`` checking each event against its own ``oneOf`` branch only.

    Returns None when the schema is not shaped as rasa 3.6's (``properties.events.items.oneOf``
    with one distinct ``properties.event.const`` per branch): then no quick path is safe.
    """
    try:
        items = schema["properties"]["events"]["items"]
        branches = items["oneOf"]
        names = [branch["properties"]["event"]["const"] for branch in branches]
    except (KeyError, TypeError):
        return None
    if len(set(names)) != len(names) or not all(isinstance(name, str) for name in names):
        return None
    outer = validator_class({**schema, "properties": {**schema["properties"], "events": {"type": "array"}}})
    common = validator_class({key: value for key, value in items.items() if key != "oneOf"})
    by_name = {name: validator_class(branch) for name, branch in zip(names, branches)}

    def is_valid(result: Any) -> bool:
        if not outer.is_valid(result):
            return False
        for event in result.get("events") or ():
            if not common.is_valid(event):  # an object whose "event" is a string
                return False
            branch = by_name.get(event["event"])
            if branch is None or not branch.is_valid(event):
                return False
        return True

    return is_valid


def install_sqlite_wal() -> None:
    """Make every SQLite connection of SQLAlchemy engines use WAL and ``synchronous=NORMAL``."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()


def install_sqlite_pool() -> None:
    """Give the SQL tracker store's SQLite engine a QueuePool instead of SQLAlchemy 1.4's NullPool.

    Only file-based ``sqlite`` URLs are changed; PostgreSQL keeps rasa's own pool settings.
    """
    from rasa.core import tracker_store
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.pool import QueuePool

    rasa_kwargs = tracker_store.create_engine_kwargs

    def create_engine_kwargs(url: Any) -> Dict[Text, Any]:
        parsed = make_url(url) if isinstance(url, str) else url
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            return {"poolclass": QueuePool, "pool_size": 5, "max_overflow": 10,
                    "connect_args": {"check_same_thread": False}}
        return rasa_kwargs(url)

    tracker_store.create_engine_kwargs = create_engine_kwargs  # type: ignore[assignment]


class _BorrowedSession:
    """``async with`` wrapper that hands out a shared ``aiohttp.ClientSession`` without closing it."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        return None


def install_endpoint_session_reuse(keepalive_s: float = KEEPALIVE_S) -> None:
    """Make ``EndpointConfig.session()`` hand out one kept session per endpoint and event loop.

    Rasa 3.6 uses the session only as ``async with endpoint.session() as session:``
    (``EndpointConfig.request`` and the model server pull), so the shared session is lent in that
    form and stays open. Outside a running event loop rasa's own ``session()`` is used.
    """
    import asyncio

    import aiohttp
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

    rasa_session = EndpointConfig.session

    def session(self: Any) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return rasa_session(self)
        kept: Optional[Any] = getattr(self, "_kept_session", None)
        if kept is None or kept.closed or getattr(self, "_kept_session_loop", None) is not loop:
            auth = (aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
                    if self.basic_auth else None)
            kept = aiohttp.ClientSession(
                headers=self.headers, auth=auth,
                timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(keepalive_timeout=keepalive_s),
            )
            self._kept_session, self._kept_session_loop = kept, loop
        return _BorrowedSession(kept)

    EndpointConfig.session = session  # type: ignore[method-assign]


def install_event_type_cache() -> None:
    """Remember ``Event.resolve_by_type``'s answer per type name (same classes, same errors)."""
    from rasa.shared.core import events

    resolve = events.Event.resolve_by_type
    known: Dict[Text, Any] = {}

    def resolve_by_type(type_name: Text, default: Optional[Any] = None) -> Optional[Any]:
        found = known.get(type_name)
        if found is None:
            found = resolve(type_name, default)
            if found is not None and getattr(found, "type_name", None) == type_name:
                known[type_name] = found
        return found

    events.Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign]


class _CachedSession:
    """The stored events of one conversation's current session, as a tracker store cache entry.

    Attributes:
        mark: ``(highest event id, number of events)`` of the conversation in the database (all
            sessions) when the entry was last known to match it.
        events: the JSON texts of the current session's events, in id order, as stored.
        tracker: the ``DialogueStateTracker`` object this store last saved these events from, not
            yet handed out again, or None.
        tracker_events: how many events ``tracker`` held when it was saved.
    """

    __slots__ = ("mark", "events", "tracker", "tracker_events")

    def __init__(self, mark: Any, events: Any) -> None:
        self.mark = mark
        self.events = events
        self.tracker: Any = None
        self.tracker_events = 0

    def take_saved_tracker(self) -> Any:
        """The saved tracker object, once, if it still holds exactly the saved events; else None."""
        tracker, self.tracker = self.tracker, None
        if tracker is None or tracker.events.maxlen is not None or len(tracker.events) != self.tracker_events:
            return None
        return tracker


def install_tracker_cache(max_conversations: int = TRACKER_CACHE_CONVERSATIONS) -> None:
    """Let ``SQLTrackerStore`` reuse the stored events of recent conversations (SQLite and PostgreSQL).

    Reading (``retrieve``, current session only): one query gets the conversation's
    ``(max(id), count(*))`` over all its stored events. When the cache holds an entry with that
    mark, its JSON texts are parsed and the tracker is rebuilt from them with rasa's own
    ``DialogueStateTracker.from_dict``, exactly as from the database rows; otherwise rasa's query
    runs and its rows become the entry. ``retrieve_full_tracker`` is rasa's own.

    Saving: with an entry, the events after the entry's events are inserted (rasa counts the stored
    events with a query instead) and appended to the entry with the new mark; a save that starts a
    new session (``session_started``) drops the entry, so the next read comes from the database.
    Without an entry it is rasa's own save.

    The saved tracker object itself is kept too and handed to the next read of that conversation
    (once) when the mark still matches and the object still holds exactly the events it was saved
    with, instead of parsing the JSON texts and replaying them into a new tracker (rasa's
    ``from_dict``: 8 % of the samples in a py-spy profile of rasa under load, though an in-process
    A/B over 30 four-turn conversations measured only 30.8 → 30.4 ms CPU per message). The object is
    then in the state that replaying the stored events gives, because a tracker changes only by
    appending events (``DialogueStateTracker.update``). A caller that changes it without saving (an
    error while handling a message) appends events, so the count differs and the next read replays
    the stored events; a second read without a save in between also replays them, so two callers
    never share one object. Trackers with a bounded event history (``max_event_history``) are never
    handed out this way.

    Why this is correct: rasa saves a tracker inside the conversation's lock (``Agent.handle_message``
    holds the lock store's lock; shared Redis lock store with several replicas), right after reading
    it, so no other process writes that conversation in between. Any write by another process
    between two messages (another replica after a fail-over, ``python -m bot purge``) adds or
    deletes events and so changes the mark, and the entry is not used. The cache holds at most
    ``max_conversations`` conversations (least recently used dropped first) in each rasa process.

    Args:
        max_conversations: number of conversations kept per tracker store.
    """
    import itertools
    import json
    from collections import OrderedDict

    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import SessionStarted
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.constants import INTENT_NAME_KEY

    rasa_retrieve = SQLTrackerStore._retrieve
    rasa_save = SQLTrackerStore.save

    def cache_of(store: Any) -> "OrderedDict[Text, _CachedSession]":
        cache = store.__dict__.get("_cached_sessions")
        if cache is None:
            cache = store.__dict__["_cached_sessions"] = OrderedDict()
        return cache

    def mark_of(store: Any, session: Any, sender_id: Text) -> Any:
        query = store.__dict__.get("_mark_query")
        if query is None:  # built once: SQLAlchemy then reuses its compiled form
            table = store.SQLEvent
            query = store.__dict__["_mark_query"] = sa.select(
                sa.func.max(table.id), sa.func.count(table.id)).where(table.sender_id == sa.bindparam("sender"))
        row = session.execute(query, {"sender": sender_id}).one()
        return (row[0], int(row[1]))

    async def _retrieve(self: Any, sender_id: Text, fetch_events_from_all_sessions: bool) -> Any:
        if fetch_events_from_all_sessions:
            return await rasa_retrieve(self, sender_id, fetch_events_from_all_sessions)
        cache = cache_of(self)
        with self.session_scope() as session:
            mark = mark_of(self, session, sender_id)
            entry = cache.get(sender_id)
            if entry is None or entry.mark != mark:
                cache.pop(sender_id, None)
                # Rows read after the mark: a concurrent write makes them newer than the mark, so
                # the entry is merely re-read next time, never wrongly reused.
                rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
                entry = _CachedSession(mark, [row.data for row in rows])
                if not entry.events:
                    return None
                cache[sender_id] = entry
                while len(cache) > max_conversations:
                    cache.popitem(last=False)
            cache.move_to_end(sender_id)
            saved = entry.take_saved_tracker()
            if saved is not None and self.domain:
                return saved
            events = [json.loads(text) for text in entry.events]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    async def save(self: Any, tracker: Any) -> None:
        cache = cache_of(self)
        entry = cache.get(tracker.sender_id)
        if entry is None:
            await rasa_save(self, tracker)
            return
        await self.stream_events(tracker)
        new = list(itertools.islice(tracker.events, len(entry.events), len(tracker.events)))
        with self.session_scope() as session:
            rows = []
            for event in new:  # as rasa's SQLTrackerStore.save
                data = event.as_dict()
                text = json.dumps(data)
                row = self.SQLEvent(
                    sender_id=tracker.sender_id, type_name=event.type_name,
                    timestamp=data.get("timestamp"),
                    intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                    action_name=data.get("name"), data=text,
                )
                session.add(row)
                rows.append((row, text))
            session.flush()  # assigns the ids
            ids = [row.id for row, _ in rows]
            session.commit()
        if any(isinstance(event, SessionStarted) for event in new):
            cache.pop(tracker.sender_id, None)
            return
        if rows:
            entry.events.extend(text for _, text in rows)
            entry.mark = (max([entry.mark[0] or 0, *ids]), entry.mark[1] + len(rows))
        entry.tracker, entry.tracker_events = tracker, len(tracker.events)

    SQLTrackerStore._retrieve = _retrieve  # type: ignore[method-assign]
    SQLTrackerStore.save = save  # type: ignore[method-assign]


def install_graph_run_plan() -> None:
    """Run rasa's graphs in a per-target precomputed order instead of through ``dask.get``.

    The schema's nodes needed for the targets (rasa's ``minimal_graph_schema``) are put in a
    dependency order (depth-first, each node after everything it ``needs``) once per runner and
    targets; each run then calls the instantiated ``GraphNode`` objects in that order, each with
    the ``(node name, output)`` tuples of the nodes it needs, exactly as dask's synchronous
    scheduler does (a name that is neither a node nor an input is passed as the plain string, as
    dask does; an input named like a node replaces that node, as in rasa's dask graph).
    Errors: as rasa's runner: ``GraphRunError`` for a string input clashing with a node name;
    a failing component raises the node's ``GraphComponentException``, unchanged. The original
    method stays available as ``DaskGraphRunner.run_with_dask``.
    """
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    def plan_for(runner: Any, targets: Any) -> Any:
        plans = runner.__dict__.setdefault("_run_plans", {})
        plan = plans.get(tuple(targets))
        if plan is None:
            nodes = runner._graph_schema.minimal_graph_schema(list(targets)).nodes
            order: list = []
            seen: set = set()

            def visit(name: Text) -> None:
                if name in seen or name not in nodes:
                    return
                seen.add(name)
                for needed in nodes[name].needs.values():
                    visit(needed)
                order.append(name)

            for target in targets:
                visit(target)
            plan = plans[tuple(targets)] = [(name, tuple(nodes[name].needs.values())) for name in order]
        return plan

    def run(self: Any, inputs: Optional[Dict[Text, Any]] = None, targets: Optional[Any] = None) -> Dict[Text, Any]:
        run_targets = targets if targets else self._graph_schema.target_names
        plan = plan_for(self, run_targets)
        values: Dict[Text, Any] = {}
        for input_name, input_value in (inputs or {}).items():
            if isinstance(input_value, str) and (
                    input_value in inputs or any(input_value == name for name, _ in plan)):  # type: ignore[operator]
                raise GraphRunError(
                    f"Input value '{input_value}' clashes with a node name. Make sure "
                    f"that none of the input names passed to the `run` method are the "
                    f"same as node names in the graph schema."
                )
            values[input_name] = (input_name, input_value)
        try:
            for name, needs in plan:
                if name not in values:
                    values[name] = self._instantiated_nodes[name](*[values.get(n, n) for n in needs])
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(values[target] for target in run_targets)

    if not hasattr(DaskGraphRunner, "run_with_dask"):
        DaskGraphRunner.run_with_dask = DaskGraphRunner.run  # type: ignore[attr-defined]
    DaskGraphRunner.run = run  # type: ignore[method-assign]


def install_sparse_feature_join() -> None:
    """Join two COO sparse feature matrices directly instead of through ``scipy.sparse.hstack``.

    ``Features._combine_sparse_features`` (rasa 3.6) sets ``features = hstack([mine, theirs])``;
    for two ``coo_matrix`` blocks scipy 1.10's ``bmat`` copies each block, builds object arrays
    and returns a ``coo_matrix`` whose entries are the first block's followed by the second's
    (columns shifted by the first block's width), dtype the common type. The same matrix (same
    entries in the same order, dtype, shape) is built here with three ``numpy.concatenate`` calls,
    about 4 times faster. Other formats (rasa's featurizers make COO) and mismatched row counts
    go to rasa's original method, which raises its ``ValueError``. The original stays available
    as ``Features._combine_sparse_features_with_hstack``.
    """
    import numpy as np
    from rasa.shared.nlu.training_data.features import Features
    from scipy.sparse import coo_matrix, isspmatrix_coo

    if not hasattr(Features, "_combine_sparse_features_with_hstack"):
        Features._combine_sparse_features_with_hstack = Features._combine_sparse_features  # type: ignore[attr-defined]
    original = Features._combine_sparse_features_with_hstack  # type: ignore[attr-defined]

    def _combine_sparse_features(self: Any, additional_features: Any) -> None:
        left, right = self.features, additional_features.features
        if not (isspmatrix_coo(left) and isspmatrix_coo(right)) or left.shape[0] != right.shape[0]:
            return original(self, additional_features)
        dtype = np.result_type(left.dtype, right.dtype)
        self.features = coo_matrix(
            (np.concatenate((left.data.astype(dtype, copy=False), right.data.astype(dtype, copy=False))),
             (np.concatenate((left.row, right.row)), np.concatenate((left.col, right.col + left.shape[1])))),
            shape=(left.shape[0], left.shape[1] + right.shape[1]))
        self._cached_fingerprint = None

    Features._combine_sparse_features = _combine_sparse_features  # type: ignore[method-assign]


def flat_tensors(specs: Any, batch_in: Any) -> Optional[list]:
    """Eager tensors for a rasa batch, or None unless it fits the traced signature exactly.

    Args:
        specs: one ``(tf dtype, numpy dtype, rank, last dimension or None)`` per signature entry.
        batch_in: rasa's batch, a tuple of numpy arrays.
    Returns:
        One ``EagerTensor`` per array (same values and dtype), or None when the
        number of arrays, a dtype, a rank or a last dimension differs from ``specs``.
    """
    from tensorflow.python.eager import context
    from tensorflow.python.framework import constant_op

    if len(batch_in) != len(specs):
        return None
    ctx = context.context()
    tensors = []
    for array, (dtype, np_dtype, rank, last) in zip(batch_in, specs):
        if (getattr(array, "dtype", None) != np_dtype or getattr(array, "ndim", None) != rank
                or (last is not None and array.shape[-1] != last)):
            return None
        tensors.append(constant_op.convert_to_eager_tensor(array, ctx, dtype))
    return tensors


def install_tf_concrete_predict() -> None:
    """Call the concrete TensorFlow function of a rasa model's prediction step with flat tensors.

    ``RasaModel._rasa_predict`` (DIET, ResponseSelector) wraps ``predict_step`` in a
    ``tf.function`` with an input signature built from the first batch (one ``TensorSpec`` per
    array: its dtype, rank and last dimension; every other dimension open), so exactly one
    concrete function exists. Calling the ``tf.function``, and even the concrete function, still
    canonicalizes the arguments against the structured signature and converts each array through
    TensorFlow's generic conversion registry on every prediction (about 10 % of rasa's CPU in a
    py-spy profile under ``make bench``). After rasa's own first call (which traces the function),
    each later batch whose arrays have exactly the signature's dtypes, ranks and last dimensions
    is turned into eager tensors directly and given to the concrete function's flat call
    (``ConcreteFunction._call_flat(tensors, captured_inputs)``, what its structured call ends in,
    TensorFlow 2.12); the outputs get rasa's own post-processing. Any other batch, eager models and
    the first call go to rasa's method, kept as ``RasaModel._rasa_predict_with_tf_function``.
    Measured in one process over 120 four-turn messages (3 alternating rounds): 33.1 → 31.6 ms
    CPU per message in rasa, identical replies.
    """
    import tensorflow as tf
    from keras.utils import tf_utils
    from rasa.shared.constants import DIAGNOSTIC_DATA
    from rasa.utils.tensorflow.models import RasaModel

    if not hasattr(RasaModel, "_rasa_predict_with_tf_function"):
        RasaModel._rasa_predict_with_tf_function = RasaModel._rasa_predict  # type: ignore[attr-defined]
    original = RasaModel._rasa_predict_with_tf_function  # type: ignore[attr-defined]

    def flat_plan(model: Any) -> Any:
        """(concrete function, [(tf dtype, numpy dtype, rank, last dimension or None), ...])."""
        concrete = model._tf_predict_step.get_concrete_function()
        specs = tf.nest.flatten(concrete.structured_input_signature[0][0])
        return concrete, [(spec.dtype, spec.dtype.as_numpy_dtype, spec.shape.rank, spec.shape[-1])
                          for spec in specs]

    def _rasa_predict(self: Any, batch_in: Any) -> Dict[Text, Any]:
        plan = self.__dict__.get("_concrete_predict_step")
        if plan is None:
            outputs = original(self, batch_in)
            if not self._run_eagerly and self._tf_predict_step is not None:
                # (concrete function, specs); a plain __dict__ entry: keras would otherwise track
                # it as part of the model
                self.__dict__["_concrete_predict_step"] = flat_plan(self)
            return outputs
        concrete, specs = plan
        tensors = flat_tensors(specs, batch_in)
        if tensors is None:
            return original(self, batch_in)
        self._training = False
        outputs = tf_utils.sync_to_numpy_or_python_type(concrete._call_flat(tensors, concrete.captured_inputs))
        if DIAGNOSTIC_DATA in outputs:
            outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
        return outputs

    RasaModel._rasa_predict = _rasa_predict  # type: ignore[method-assign]


def install_gc_freeze_after_load() -> None:
    """After the rasa server has loaded its model, collect garbage once and ``gc.freeze()``.

    Wraps ``rasa.core.run.load_agent_on_start`` (the server's start-up listener; rasa builds the
    listener from the module attribute at start-up, so the wrapper is what runs). The frozen
    objects (the model, TensorFlow, spaCy; about 940,000) are still freed by reference counting,
    but full collections no longer walk them: 0.5-0.8 s per full collection before (measured on the
    loaded agent), 0.01-0.02 s under ``make bench`` after (``gc.callbacks``). A model replaced later
    through rasa's HTTP API is not frozen.
    """
    import gc
    import logging

    from rasa.core import run

    if hasattr(run, "load_agent_on_start_unfrozen"):
        return
    original = run.load_agent_on_start
    run.load_agent_on_start_unfrozen = original  # type: ignore[attr-defined]

    async def load_agent_on_start(*args: Any, **kwargs: Any) -> Any:
        agent = await original(*args, **kwargs)
        gc.collect()
        gc.freeze()
        logging.getLogger(__name__).info("gc.freeze(): %d objects moved to the permanent generation",
                                         gc.get_freeze_count())
        return agent

    run.load_agent_on_start = load_agent_on_start  # type: ignore[assignment]


def rasa_cli() -> None:
    """Run rasa's own CLI with this process's arguments, as the ``rasa`` command would."""
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


def main() -> None:
    """Install the fixes, then run rasa's CLI with the given arguments (e.g. ``run --enable-api``)."""
    install_cached_action_validation()
    install_sqlite_wal()
    install_sqlite_pool()
    install_endpoint_session_reuse()
    install_event_type_cache()
    install_tracker_cache()
    install_graph_run_plan()
    install_sparse_feature_join()
    install_tf_concrete_predict()
    install_gc_freeze_after_load()
    rasa_cli()


if __name__ == "__main__":
    main()
