"""Staff tools (職員向けツール): training data from spreadsheets, data checks, the NLU report.

Staff keep example phrasings (例文) per intent or procedure in a spreadsheet; the tools turn it into
Rasa NLU training data, check all training data for duplicate or conflicting examples, and turn a
cross-validation result into an HTML report with charts.

Commands (``python -m bot staff ...``, see :mod:`bot.staff.cli`):

- ``import-examples 例文.xlsx``: spreadsheet → ``data/nlu/staff_examples.yml`` (:mod:`bot.staff.examples`).
- ``check``: duplicate / conflicting examples across ``data/nlu`` (:mod:`bot.staff.nlu_data`);
  ``make validate`` runs it.
- ``nlu-report results/cv/config``: cross-validation folder → ``results/evaluate/index.html``
  (:mod:`bot.staff.nlu_report`); ``make evaluate`` runs it.

Staff documentation (Japanese): ``docs/staff/``.
"""
