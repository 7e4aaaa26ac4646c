"""Learning from citizens' questions (市民の質問からの改善): review records, CSV round trip, monthly report.

- :mod:`bot.review.store`: the SQLite store (``Settings.REVIEW_DB``, default ``var/review.db``) the
  action server writes one row per answered question and per 「解決しましたか？」 reply to.
- :mod:`bot.review.record`: what is recorded (pseudonymous sender, intent, confidence, procedure,
  resolution) and when the citizen's text is kept, always redacted with :func:`bot.privacy.redact`
  (only for fallbacks, low-confidence answers and 「いいえ」).
- :mod:`bot.review.exchange`: ``review export`` (CSV for staff to label) and ``review import``
  (labelled rows → training examples ``data/nlu/staff_review.yml`` or FAQ rows).
- :mod:`bot.review.report`: the monthly HTML report with charts.

Commands: ``python -m bot review export|import|report`` (:mod:`bot.review.cli`).
"""
