"""``POST /api/furigana``: readings (ふりがな) over the kanji of a text, for the web page's toggle.

The readings come from SudachiPy (:mod:`bot.furigana`). The text is not logged.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from bot.deps import SettingsDep
from bot.furigana import furigana

router = APIRouter(prefix="/api", tags=["furigana"])


class FuriganaRequest(BaseModel):
    """Request body: ``text`` (non-empty after stripping; at most ``FURIGANA_MAX_CHARS`` characters)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "住民票を取りたい"}]})

    text: str

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        """Reject a blank text (error type ``text_empty``); the text itself is kept as sent."""
        if not value.strip():
            raise PydanticCustomError("text_empty", "文字を入力してください / text must not be empty")
        return value


class Segment(BaseModel):
    """A piece of the text; ``reading`` (hiragana) only on pieces containing kanji."""

    text: str
    reading: str | None = None


class FuriganaResponse(BaseModel):
    """The segments in order; joined, their texts give the request text back exactly."""

    segments: list[Segment]


@router.post("/furigana", response_model=FuriganaResponse, response_model_exclude_none=True)
def post_furigana(request: FuriganaRequest, settings: SettingsDep) -> dict[str, list[dict[str, str]]]:
    """Split ``text`` into segments with readings over the kanji.

    Example: ``{"text": "住民票を"}`` → ``{"segments": [{"text": "住民票", "reading":
    "じゅうみんひょう"}, {"text": "を"}]}``. A plain ``def`` so that Sudachi runs in the
    thread pool, not on the event loop.

    Raises:
        RequestValidationError: blank text, or longer than ``FURIGANA_MAX_CHARS`` (→ 422);
            invalid JSON → 400 (handler in :mod:`bot.main`).
    """
    if len(request.text) > settings.FURIGANA_MAX_CHARS:
        raise RequestValidationError(
            [
                {
                    "type": "text_too_long",
                    "loc": ("body", "text"),
                    "msg": f"{settings.FURIGANA_MAX_CHARS}文字以内で指定してください"
                    f" / text must be at most {settings.FURIGANA_MAX_CHARS} characters",
                }
            ]
        )
    return {"segments": furigana(request.text)}
