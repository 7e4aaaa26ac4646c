"""NLU regression on held-out examples (tests/data/nlu_heldout.yml, not in data/nlu/): the trained
model must keep recognising intents, the procedure (ResponseSelector) and procedure mentions.

Runs in .venv-rasa against models/current.tar.gz (``make test`` trains it first).
"""
import asyncio
from pathlib import Path

import pytest
from rasa.core.agent import Agent
from rasa.shared.nlu.training_data.loading import load_data

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "current.tar.gz"
HELDOUT = ROOT / "tests" / "data" / "nlu_heldout.yml"


@pytest.fixture(scope="module")
def parsed():
    if not MODEL.is_file():
        pytest.fail("models/current.tar.gz がありません。make model で学習してください。")
    agent = Agent.load(str(MODEL))
    examples = load_data(str(HELDOUT)).intent_examples
    loop = asyncio.new_event_loop()
    try:
        results = [loop.run_until_complete(agent.parse_message(ex.get("text"))) for ex in examples]
    finally:
        loop.close()
    return list(zip(examples, results))


def test_intent_accuracy_on_heldout(parsed):
    correct = sum(res["intent"]["name"] == ex.get("intent") for ex, res in parsed)
    accuracy = correct / len(parsed)
    misses = [(ex.get("text"), ex.get("intent"), res["intent"]["name"]) for ex, res in parsed
              if res["intent"]["name"] != ex.get("intent")]
    print(f"\nheld-out intent accuracy {correct}/{len(parsed)} = {accuracy:.1%}; misses: {misses}")
    assert len(parsed) >= 150
    assert accuracy >= 0.85, misses


def test_procedure_selection_on_heldout(parsed):
    asked = [(ex, res) for ex, res in parsed if ex.get("intent_response_key")]
    correct = 0
    for ex, res in asked:
        selected = res.get("response_selector", {}).get("ask_procedure", {}).get("response", {})
        correct += selected.get("intent_response_key") == ex.get("intent_response_key")
    accuracy = correct / len(asked)
    print(f"\nheld-out procedure selection {correct}/{len(asked)} = {accuracy:.1%}")
    assert accuracy >= 0.8


def test_procedure_mentions_are_extracted(parsed):
    expected = found = 0
    for ex, res in parsed:
        spans = {(e["start"], e["end"]) for e in ex.get("entities", []) if e["entity"] == "procedure"}
        got = {(e["start"], e["end"]) for e in res.get("entities", []) if e["entity"] == "procedure"}
        expected += len(spans)
        found += len(spans & got)
    recall = found / expected
    print(f"\nheld-out procedure mention recall {found}/{expected} = {recall:.1%}")
    assert recall >= 0.7
