"""GET /api/procedures and /api/procedures/{id}: the catalogue as JSON for the city's systems."""
import pytest
from fastapi.testclient import TestClient

from bot.main import create_app


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def test_get_one_procedure_with_channels_and_source(client):
    body = client.get("/api/procedures/juminhyo_copy").json()
    assert body["name"] == "住民票の写しの交付"
    assert body["channels"]["convenience_store"]["available"] is True
    assert body["channel_order"][0] != "counter", "options that spare a visit come first"
    assert body["source_url"].startswith("https://") and body["checked"]


def test_unknown_id_is_404_with_message(client):
    resp = client.get("/api/procedures/no_such_thing")
    assert resp.status_code == 404 and "no_such_thing" in resp.json()["detail"]


def test_free_text_search_puts_the_named_procedure_first(client):
    body = client.get("/api/procedures", params={"q": "印鑑証明"}).json()
    assert body["procedures"][0]["id"] == "inkan_certificate"
    assert body["count"] == len(body["procedures"])


def test_channel_filter_keeps_only_procedures_available_there(client):
    body = client.get("/api/procedures", params={"channel": "convenience_store"}).json()
    ids = {p["id"] for p in body["procedures"]}
    assert "juminhyo_copy" in ids and "moving_in" not in ids
    assert all(p["channels"]["convenience_store"]["available"] for p in body["procedures"])


def test_life_event_filter(client):
    body = client.get("/api/procedures", params={"life_event": "birth"}).json()
    assert "birth_registration" in {p["id"] for p in body["procedures"]}
    assert all("birth" in p["life_events"] for p in body["procedures"])


def test_bad_filter_value_is_422(client):
    assert client.get("/api/procedures", params={"channel": "fax"}).status_code == 422


def test_documented_in_openapi(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/procedures" in paths and "/api/procedures/{procedure_id}" in paths
