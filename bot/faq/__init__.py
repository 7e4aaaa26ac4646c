"""FAQ answering for the long tail (よくある質問への自動応答).

When no procedure of the catalogue fits a message, the bot looks the message up in the city's FAQ
and answers with the best entry (its answer text and official URL) plus up to 2 other candidates as
buttons, or says it does not know and gives the city's contact.

FAQ file (staff keep it, e.g. exported from Excel): ``procedures/cities/<city>/faq.csv``
(UTF-8, with or without BOM) or ``faq.xlsx`` (first sheet), one question per row, header row::

    ID,質問,回答,カテゴリ,担当課,URL

- ID: unique per file (text or number, e.g. ``12`` or ``gomi-3``); button payloads carry it.
- 質問 (question) and 回答 (answer): required. Line breaks inside a cell are kept.
- カテゴリ (category), 担当課 (department): optional text.
- URL: optional, but when given it must be an http(s) address (the official page). Answers that
  could not be checked against an official page say so in the 回答 text, e.g.
  「（未確認：公式ページでご確認ください）」.

Rows are appended at the end (``review import`` of the staff tools does the same). Loading errors
name the row (:class:`bot.faq.data.FaqFormatError`).

Modules: :mod:`bot.faq.data` (loader, corpus conversion), :mod:`bot.faq.search` (retrieval),
:mod:`bot.faq.evaluate` (metrics), :mod:`bot.faq.answer` (reply for the Rasa action),
:mod:`bot.faq.cli` (``python -m bot.faq evaluate|ask|convert``).
"""
