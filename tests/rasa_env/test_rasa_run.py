"""bot/rasa_run.py: the speed fixes must keep rasa's behaviour (validation, tracker persistence)."""
import asyncio
import sqlite3

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.pool import QueuePool

from bot import rasa_run

DOMAIN = Domain.from_yaml("""
version: "3.1"
slots:
  procedure:
    type: text
    mappings: [{type: custom}]
""")


@pytest.fixture(scope="module", autouse=True)
def fixes():
    rasa_run.install_cached_action_validation()
    rasa_run.install_sqlite_wal()
    rasa_run.install_sqlite_pool()
    rasa_run.install_endpoint_session_reuse()
    rasa_run.install_event_type_cache()
    rasa_run.install_tracker_cache(max_conversations=2)
    rasa_run.install_graph_run_plan()
    rasa_run.install_sparse_feature_join()
    rasa_run.install_tf_concrete_predict()
    rasa_run.install_gc_freeze_after_load()


VALID_RESPONSES = [
    {"events": [], "responses": [{"text": "はい"}]},
    {},
    {"events": [{"event": "session_started", "timestamp": None},
                {"event": "slot", "timestamp": None, "name": "procedure", "value": "juminhyo_copy"},
                {"event": "slot", "name": "city_contact", "value": None},
                {"event": "action", "name": "action_listen", "policy": None, "confidence": None},
                {"event": "user", "text": "住民票", "parse_data": {
                    "intent": {"name": "ask_procedure", "confidence": 0.9},
                    "entities": [{"entity": "procedure", "value": "住民票", "start": 0, "end": 3}],
                    "response_selector": {"all_retrieval_intents": ["ask_procedure"]}}},
                {"event": "followup", "name": "action_answer", "metadata": {"k": 1}}],
     "responses": [{"text": "はい", "buttons": []}]},
]
INVALID_RESPONSES = [
    {"events": "not a list", "responses": []},
    {"events": [], "responses": "not a list"},
    [],
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"name": "procedure"}]},                                   # no event name
    {"events": [{"event": 3}]},                                            # name not a string
    {"events": ["slot"]},                                                  # event not an object
    {"events": [{"event": "slot", "name": "procedure"}]},                  # slot without value
    {"events": [{"event": "slot", "name": "p", "value": 1}, {"event": "entities", "entities": [{}]}]},
    {"events": [{"event": "user", "parse_data": {"intent": {"confidence": "high"}}}]},
    {"events": [{"event": "action", "name": 5}]},
    {"events": [{"event": "slot", "name": "p", "value": 1, "timestamp": "now"}]},
]


def test_valid_action_response_accepted_invalid_rejected_with_rasa_message():
    action = RemoteAction("action_x", None)
    for response in VALID_RESPONSES:
        assert action._validate_action_result(response)
    for response in INVALID_RESPONSES:
        with pytest.raises(ValidationError, match="Failed to validate Action server response"):
            action._validate_action_result(response)


def test_quick_event_check_gives_the_full_schema_verdict():
    """The per-event quick path exists for rasa's schema and agrees with jsonschema on every case."""
    from jsonschema import validators

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    quick = rasa_run._quick_events_validator(schema, validator_class)
    assert quick is not None, "rasa's event schema changed shape: the quick path is off"
    full = validator_class(schema)
    for response in VALID_RESPONSES + INVALID_RESPONSES:
        assert quick(response) == full.is_valid(response), response
    # branches not told apart by a distinct event name: no quick path at all
    items = schema["properties"]["events"]["items"]
    clash = {**schema, "properties": {**schema["properties"], "events": {
        **schema["properties"]["events"], "items": {**items, "oneOf": items["oneOf"] + items["oneOf"][:1]}}}}
    assert rasa_run._quick_events_validator(clash, validator_class) is None


def test_sparse_feature_join_builds_what_scipy_hstack_builds():
    import numpy as np
    import scipy.sparse
    from rasa.shared.nlu.training_data.features import Features

    def features(matrix):
        return Features(matrix, "sequence", "text", "CountVectorsFeaturizer")

    rng = np.random.default_rng(7)
    for rows, dtypes in ((1, ("float64", "float64")), (9, ("float32", "float64")), (4, ("int64", "float32"))):
        left = scipy.sparse.random(rows, 30, density=0.2, format="coo", dtype=dtypes[0], random_state=rng)
        right = scipy.sparse.random(rows, 500, density=0.05, format="coo", dtype=dtypes[1], random_state=rng)
        joined, expected = features(left.copy()), scipy.sparse.hstack([left, right])
        joined.combine_with_features(features(right))
        got = joined.features
        assert scipy.sparse.isspmatrix_coo(got) and got.shape == expected.shape and got.dtype == expected.dtype
        for part in ("row", "col", "data"):
            assert np.array_equal(getattr(got, part), getattr(expected, part)), part
            assert getattr(got, part).dtype == getattr(expected, part).dtype, part
    # other formats and mismatched rows: rasa's own method (a CSR result, rasa's ValueError)
    csr = features(scipy.sparse.random(2, 5, density=0.5, format="csr", random_state=rng))
    csr.combine_with_features(features(scipy.sparse.random(2, 3, density=0.5, format="csr", random_state=rng)))
    assert csr.features.format == "csr" and csr.features.shape == (2, 8)
    with pytest.raises(ValueError, match="sequence dimensions do not match"):
        features(scipy.sparse.random(2, 5, format="coo")).combine_with_features(
            features(scipy.sparse.random(3, 5, format="coo")))


def test_sqlite_tracker_store_reuses_connections_and_persists(tmp_path):
    db = tmp_path / "trackers.db"
    store = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(db))
    assert isinstance(store.engine.pool, QueuePool)
    tracker = DialogueStateTracker.from_events("citizen-1", [
        ActionExecuted("action_listen"), UserUttered("住民票"), SlotSet("procedure", "juminhyo")], slots=DOMAIN.slots)
    asyncio.run(store.save(tracker))
    # another process (a second replica, the purge command) sees the commit at once
    with sqlite3.connect(db) as other:
        assert other.execute("SELECT count(*) FROM events WHERE sender_id = 'citizen-1'").fetchone()[0] == 3
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # a fresh store (rasa restarted) continues from the persisted tracker
    again = asyncio.run(SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(db)).retrieve("citizen-1"))
    assert again.get_slot("procedure") == "juminhyo"


def test_postgres_and_in_memory_urls_keep_rasa_settings():
    from rasa.core import tracker_store
    pg = tracker_store.create_engine_kwargs("postgresql://u:p@localhost/rasa")
    assert "poolclass" not in pg and "pool_size" in pg
    assert tracker_store.create_engine_kwargs("sqlite://") == {}


def test_action_calls_reuse_one_connection_and_survive_a_server_restart():
    """Custom action calls keep one keep-alive connection; a restarted action server is reached
    again at once; an error status still raises rasa's ClientResponseError."""
    from aiohttp import web
    from rasa.utils.endpoints import ClientResponseError, EndpointConfig

    peers = []

    async def webhook(request):
        peers.append(request.transport.get_extra_info("peername"))
        body = await request.json()
        if body.get("fail"):
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response({"events": [], "responses": [{"text": body["next_action"]}]})

    async def serve(port=0):
        app = web.Application()
        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    async def scenario():
        runner, port = await serve()
        endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
        first = [await endpoint.request(json={"next_action": f"action_{i}"}) for i in range(3)]
        await runner.cleanup()  # the action server stops (closes its connections) ...
        runner, _ = await serve(port)  # ... and comes back on the same port
        again = await endpoint.request(json={"next_action": "action_again"})
        with pytest.raises(ClientResponseError):
            await endpoint.request(json={"next_action": "x", "fail": True})
        await runner.cleanup()
        return first, again

    first, again = asyncio.run(scenario())
    assert [r["responses"][0]["text"] for r in first] == ["action_0", "action_1", "action_2"]
    assert again["responses"][0]["text"] == "action_again"
    assert len(set(peers[:3])) == 1, "the first three calls should share one connection"
    assert peers[3] != peers[0], "after the restart a new connection is opened"


def _events(tracker):
    return [e.as_dict() for e in tracker.events] if tracker else None


def _turn(tracker, text, procedure):
    for event in (UserUttered(text, {"name": "ask_procedure"}), SlotSet("procedure", procedure),
                  ActionExecuted("action_answer_procedure"), ActionExecuted("action_listen")):
        tracker.update(event)


def test_tracker_cache_gives_what_the_database_holds(tmp_path):
    """The cached store returns exactly what rasa's own read of the database returns, also after
    another replica wrote the conversation, a purge deleted it, and a new session started."""
    db = str(tmp_path / "trackers.db")
    replica_1 = SQLTrackerStore(DOMAIN, dialect="sqlite", db=db)
    replica_2 = SQLTrackerStore(DOMAIN, dialect="sqlite", db=db)

    def from_database(sender):  # a fresh store: nothing cached, rasa's own query
        return _events(asyncio.run(SQLTrackerStore(DOMAIN, dialect="sqlite", db=db).retrieve(sender)))

    tracker = DialogueStateTracker.from_events("c-1", [ActionExecuted("action_listen")], slots=DOMAIN.slots)
    _turn(tracker, "住民票", "juminhyo")
    asyncio.run(replica_1.save(tracker))  # no entry yet: rasa's save
    for text, procedure in (("戸籍", "koseki"), ("印鑑登録", "inkan")):
        tracker = asyncio.run(replica_1.retrieve("c-1"))  # from the database, then from the cache
        _turn(tracker, text, procedure)
        asyncio.run(replica_1.save(tracker))  # only the new events are inserted
        assert _events(asyncio.run(replica_1.retrieve("c-1"))) == from_database("c-1")
    assert asyncio.run(replica_1.retrieve("c-1")).get_slot("procedure") == "inkan"
    assert len(from_database("c-1")) == 13

    # the tracker object saved last is handed to the next read, once; a second read replays
    saved = asyncio.run(replica_1.retrieve("c-1"))
    _turn(saved, "住民票の写し", "juminhyo")
    asyncio.run(replica_1.save(saved))
    first, second = asyncio.run(replica_1.retrieve("c-1")), asyncio.run(replica_1.retrieve("c-1"))
    assert first is saved and second is not saved
    assert _events(first) == _events(second) == from_database("c-1")
    assert first.current_state() == second.current_state()

    # a tracker changed but never saved (an error while handling a message) is not remembered
    asyncio.run(replica_1.save(second))
    changed = asyncio.run(replica_1.retrieve("c-1"))
    assert changed is second
    changed.update(SlotSet("procedure", "unsaved"))
    assert asyncio.run(replica_1.retrieve("c-1")).get_slot("procedure") == "juminhyo"
    # ... nor one changed after it was saved
    kept = asyncio.run(replica_1.retrieve("c-1"))
    asyncio.run(replica_1.save(kept))
    kept.update(SlotSet("procedure", "changed after saving"))
    assert asyncio.run(replica_1.retrieve("c-1")).get_slot("procedure") == "juminhyo"
    assert _events(asyncio.run(replica_1.retrieve("c-1"))) == from_database("c-1")

    # another replica continues the conversation (fail-over): replica 1 sees its events
    other = asyncio.run(replica_2.retrieve("c-1"))
    _turn(other, "マイナンバーカード", "mynumber_card")
    asyncio.run(replica_2.save(other))
    assert asyncio.run(replica_1.retrieve("c-1")).get_slot("procedure") == "mynumber_card"
    assert _events(asyncio.run(replica_1.retrieve("c-1"))) == from_database("c-1")

    # a new session: the cache entry is dropped and the next read has only the new session
    tracker = asyncio.run(replica_1.retrieve("c-1"))
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    asyncio.run(replica_1.save(tracker))
    _turn(tracker, "児童手当", "jido_teate")
    asyncio.run(replica_1.save(tracker))
    assert _events(asyncio.run(replica_1.retrieve("c-1"))) == from_database("c-1")
    assert asyncio.run(replica_1.retrieve("c-1")).get_slot("procedure") == "jido_teate"

    # the purge command (another process) deletes the conversation: it is gone here too
    with sqlite3.connect(db) as other_process:
        other_process.execute("DELETE FROM events WHERE sender_id = 'c-1'")
    assert asyncio.run(replica_1.retrieve("c-1")) is None

    # at most max_conversations (2 here) are kept; the others are read from the database
    for sender in ("a", "b", "c"):
        asyncio.run(replica_1.save(DialogueStateTracker.from_events(
            sender, [ActionExecuted("action_listen"), UserUttered(sender)], slots=DOMAIN.slots)))
        asyncio.run(replica_1.retrieve(sender))
    assert list(replica_1._cached_sessions) == ["b", "c"]
    assert [_events(asyncio.run(replica_1.retrieve(s))) for s in "abc"] == [from_database(s) for s in "abc"]


def test_event_types_resolve_as_in_rasa():
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("slot") is SlotSet  # remembered
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")


class _Add:
    """A graph component adding its inputs and its config's ``x`` (rasa's GraphComponent protocol)."""

    calls = []

    def __init__(self, config, name):
        self.x, self.name = config.get("x", 0), name

    @classmethod
    def create(cls, config, model_storage, resource, execution_context):
        return cls(config, resource.name)

    def add(self, **numbers):
        _Add.calls.append(self.name)
        if numbers.get("a") == "boom":
            raise RuntimeError("boom")
        return sum(v for v in numbers.values() if isinstance(v, int)) + self.x


def _toy_runner(tmp_path):
    from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema, SchemaNode
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    component = type("Add", (_Add, GraphComponent), {})
    node = lambda needs, x, **kw: SchemaNode(needs=needs, uses=component, constructor_name="create",
                                             fn="add", config={"x": x}, **kw)
    schema = GraphSchema({
        "first": node({"a": "__input__"}, 1),
        "second": node({"a": "first"}, 10),
        "third": node({"a": "first", "b": "second"}, 100, is_target=True),
        "unused": node({"a": "__input__"}, 1000),
    })
    return DaskGraphRunner(schema, LocalModelStorage(tmp_path), ExecutionContext(schema, "m"))


def test_graph_runs_in_a_plan_give_what_dask_gives(tmp_path):
    from rasa.engine.exceptions import GraphComponentException, GraphRunError

    runner = _toy_runner(tmp_path)
    for value in (0, 5, 7):
        _Add.calls.clear()
        planned = runner.run(inputs={"__input__": value}, targets=["third"])
        planned_calls = list(_Add.calls)
        _Add.calls.clear()
        assert planned == runner.run_with_dask(inputs={"__input__": value}, targets=["third"])
        assert planned == {"third": 2 * (value + 1) + 10 + 100}
        assert planned_calls == ["first", "second", "third"] and sorted(_Add.calls) == sorted(planned_calls)
    assert runner.run(inputs={"__input__": 1}, targets=["first", "unused"]) == {"first": 2, "unused": 1001}
    with pytest.raises(GraphRunError, match="clashes"):
        runner.run(inputs={"__input__": "second"}, targets=["third"])
    for run in (runner.run, runner.run_with_dask):  # a failing component: the same error either way
        with pytest.raises(GraphComponentException, match="Error running graph component for node first"):
            run(inputs={"__input__": "boom"}, targets=["third"])


def _same(a, b):
    """Equal JSON-like values, floats to 1e-6 (TensorFlow's CPU kernels may round differently)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float):
        return b == pytest.approx(a, rel=1e-6, abs=1e-9)
    return a == b


def test_trained_model_parses_as_with_rasas_own_methods(monkeypatch):
    """The trained model (models/current.tar.gz) gives the same intents, confidences, entities
    and ResponseSelector rankings with the sparse join and concrete-function fixes as without."""
    from pathlib import Path

    import yaml
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.features import Features
    from rasa.utils.tensorflow.models import RasaModel

    root = Path(__file__).resolve().parents[2]
    model = root / "models" / "current.tar.gz"
    if not model.is_file():
        pytest.fail("models/current.tar.gz がありません。make model で学習してください。")
    texts = [q["text"] for q in yaml.safe_load(
        (root / "tests" / "data" / "procedure_questions.yml").read_text(encoding="utf-8"))["questions"]][:25]
    texts += ["手数料は？", "何時まで？", "ありがとう", "🙂", "a" * 300]
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()
    try:
        with monkeypatch.context() as rasa_own:
            rasa_own.setattr(Features, "_combine_sparse_features", Features._combine_sparse_features_with_hstack)
            rasa_own.setattr(RasaModel, "_rasa_predict", RasaModel._rasa_predict_with_tf_function)
            expected = [loop.run_until_complete(agent.parse_message(t)) for t in texts]
        flat_calls = []
        with monkeypatch.context() as spy:
            convert = rasa_run.flat_tensors
            spy.setattr(rasa_run, "flat_tensors", lambda *a: flat_calls.append(convert(*a)) or flat_calls[-1])
            got = [loop.run_until_complete(agent.parse_message(t)) for t in texts + texts[:3]]
    finally:
        loop.close()
    nodes = agent.processor.graph_runner._instantiated_nodes
    models = [node._component.model for node in nodes.values()
              if "_concrete_predict_step" in getattr(getattr(node._component, "model", None), "__dict__", {})]
    assert len(models) == 2, "DIET and the ResponseSelector both take the flat concrete-function path"
    # every call after each model's first (which traces the function, at load) takes the flat path
    assert len(flat_calls) >= len(models) * (len(texts) + 3 - 1)
    assert all(tensors is not None for tensors in flat_calls)
    for text, want, have in zip(texts + texts[:3], expected + expected[:3], got):
        assert _same(want, have), text


def test_flat_tensors_only_for_batches_of_the_traced_signature():
    """A batch is converted only when count, dtypes, ranks and last dimensions match the signature;
    anything else (None) goes back to rasa's own tf.function call."""
    import numpy as np
    import tensorflow as tf

    specs = [(tf.float32, np.float32, 3, 8), (tf.int64, np.int64, 1, None)]
    good = (np.ones((1, 5, 8), np.float32), np.arange(4, dtype=np.int64))
    tensors = rasa_run.flat_tensors(specs, good)
    assert [t.dtype for t in tensors] == [tf.float32, tf.int64]
    assert np.array_equal(tensors[0].numpy(), good[0]) and np.array_equal(tensors[1].numpy(), good[1])
    assert rasa_run.flat_tensors(specs, good[:1]) is None                                    # count
    assert rasa_run.flat_tensors(specs, (good[0].astype(np.float64), good[1])) is None        # dtype
    assert rasa_run.flat_tensors(specs, (np.ones((5, 8), np.float32), good[1])) is None       # rank
    assert rasa_run.flat_tensors(specs, (np.ones((1, 5, 9), np.float32), good[1])) is None    # last dim


def test_server_start_up_freezes_what_the_loaded_model_holds(monkeypatch):
    """rasa's start-up listener still loads and returns the agent; then everything alive is frozen."""
    import gc
    import types

    from rasa.core import agent as agent_module
    from rasa.core import run

    async def load_agent(**kwargs):
        return ("agent", kwargs["model_path"])

    monkeypatch.setattr(agent_module, "load_agent", load_agent)
    app = types.SimpleNamespace(ctx=types.SimpleNamespace())
    gc.unfreeze()
    try:
        got = asyncio.run(run.load_agent_on_start("models/m.tar.gz", None, None, app, None))
        assert got == app.ctx.agent == ("agent", "models/m.tar.gz")
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
