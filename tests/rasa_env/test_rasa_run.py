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


def test_valid_action_response_accepted_invalid_rejected_with_rasa_message():
    action = RemoteAction("action_x", None)
    assert action._validate_action_result({"events": [], "responses": [{"text": "はい"}]})
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result({"events": "not a list", "responses": []})


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

    # a tracker changed but never saved (an error while handling a message) is not remembered
    asyncio.run(replica_1.retrieve("c-1")).update(SlotSet("procedure", "unsaved"))
    assert asyncio.run(replica_1.retrieve("c-1")).get_slot("procedure") == "inkan"

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
