"""Tests that need rasa itself: run with .venv-rasa (make test does), skipped elsewhere."""
import pytest

pytest.importorskip("rasa", reason="needs the rasa virtual environment (.venv-rasa)")
