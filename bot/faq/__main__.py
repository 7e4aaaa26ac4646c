"""``python -m bot.faq``: see :mod:`bot.faq.cli`."""

from bot.faq.cli import app

app(prog_name="python -m bot.faq")
