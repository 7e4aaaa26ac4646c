"""Small matplotlib helpers shared by the NLU report and the monthly report (グラフ).

Figures are drawn with the object-oriented API (``matplotlib.figure.Figure`` + Agg canvas, no
pyplot state), so they work in any process without a display. Japanese labels are drawn with a
Japanese font when one is installed (Noto Sans CJK JP, IPAexGothic …); otherwise callers fall back
to ASCII labels (ids), see :func:`japanese_font`.
"""
from __future__ import annotations

import base64
import io
from functools import lru_cache
from typing import Optional

from matplotlib.figure import Figure

#: Fonts tried in order for Japanese text (family names as matplotlib's font manager knows them).
JAPANESE_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic",
                  "Yu Gothic", "Hiragino Sans", "VL Gothic")


@lru_cache(maxsize=1)
def japanese_font() -> Optional[str]:
    """The first installed font of :data:`JAPANESE_FONTS`, or None (then label charts with ASCII)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in JAPANESE_FONTS if name in installed), None)


def chart_style():
    """Context manager for drawing: the Japanese font (when installed) with DejaVu Sans as fallback.

    Usage: ``with chart_style(): fig = new_figure(8, 4); ...; png = png_bytes(fig)``.
    """
    import matplotlib

    font = japanese_font()
    return matplotlib.rc_context({"font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"],
                                  "axes.unicode_minus": False})


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure of the given size in inches (100 dpi when saved), constrained layout."""
    return Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding a PNG in HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
