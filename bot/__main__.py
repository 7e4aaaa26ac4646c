"""``python -m bot``: see :mod:`bot.cli`."""

from bot.cli import app

app(prog_name="python -m bot")
