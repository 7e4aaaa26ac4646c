"""``python -m bot.nlu.cv_folds test nlu --cross-validation ...``: the ``rasa`` command with
cross-validation folds that stay the same from run to run (rasa venv only).

Rasa 3.6 draws the folds of ``rasa test nlu --cross-validation`` with
``StratifiedKFold(n_splits=n, shuffle=True)`` and no ``random_state`` (``generate_folds`` in
``rasa/nlu/test.py``), i.e. from numpy's unseeded global state. Every run of ``make evaluate``
therefore tests each example in a different fold, and adding one example reshuffles all of them,
so two runs differ although nothing changed (measured 2026-11-21: selector accuracy 0.791 vs
0.774 for the same data and config).

Here each example goes to fold ``sha1(text) mod n`` (:func:`fold_of`): the same fold in every
run, whatever examples are added or removed around it. Two configs, or the data before and after
an import round, are then compared on the same split of the examples they share. The split is not
stratified by intent: with 5 folds, all m examples of an intent land in one fold (none left to
train on there) with probability 5^(1-m), 0.00006 for the smallest intents of data/nlu (7 examples;
none does today). The models themselves are seeded by ``random_seed`` in the config.

Examples generated from the catalogue (``metadata: {source: catalogue}``, written by
``python -m procedures export-nlu``: each procedure's name and aliases) are training material,
not citizens' phrasings: they go into the training part of every fold and are never tested, and a
generated example equal to one tested in that fold (compared with
:func:`bot.nlu.japanese.fold`) is left out of its training part, so no tested text is seen in
training.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Iterator, Tuple

from bot.nlu.japanese import fold
from procedures.catalogue import CATALOGUE_SOURCE

logger = logging.getLogger("bot.nlu.cv_folds")  # also when run as __main__


def fold_of(text: str, n: int) -> int:
    """The fold (0..n-1) of an example text: SHA-1 of its UTF-8 bytes, modulo ``n``.

    Raises:
        ValueError: ``n`` < 2.
    """
    if n < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {n}")
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % n


def stable_folds(n: int, training_data) -> Iterator[Tuple["TrainingData", "TrainingData"]]:
    """Drop-in for ``rasa.nlu.test.generate_folds``: ``n`` (train, test) pairs of rasa
    ``TrainingData``; the test part of fold i holds the hand-written intent examples with
    ``fold_of(text) == i``; the training part the other hand-written ones and the generated ones
    (:func:`is_generated`) that do not equal a tested text; both parts keep the synonyms, regexes,
    lookup tables and responses."""
    from rasa.shared.nlu.training_data.training_data import TrainingData

    def part(examples) -> TrainingData:
        return TrainingData(
            training_examples=examples,
            entity_synonyms=training_data.entity_synonyms,
            regex_features=training_data.regex_features,
            lookup_tables=training_data.lookup_tables,
            responses=training_data.responses,
        )

    generated, labelled = [], []
    for ex in training_data.intent_examples:
        if is_generated(ex):
            generated.append((ex, fold(ex.get("text"))))
        else:
            labelled.append((ex, fold_of(ex.get("text"), n)))
    for i in range(n):
        logger.debug(f"Fold: {i}")
        test = [ex for ex, f in labelled if f == i]
        tested = {fold(ex.get("text")) for ex in test}
        extra = [ex for ex, key in generated if key not in tested]
        yield part([ex for ex, f in labelled if f != i] + extra), part(test)


def is_generated(example) -> bool:
    """Whether a rasa ``Message`` comes from the catalogue (intent ``metadata: {source: catalogue}``)."""
    metadata = example.get("metadata") or {}
    intent_metadata = metadata.get("intent") if isinstance(metadata, dict) else None
    return isinstance(intent_metadata, dict) and intent_metadata.get("source") == CATALOGUE_SOURCE


def install_stable_folds() -> None:
    """Make ``rasa test nlu --cross-validation`` use :func:`stable_folds`."""
    import rasa.nlu.test

    rasa.nlu.test.generate_folds = stable_folds


def main() -> None:
    """Install the stable folds, then run rasa's CLI with the given arguments."""
    from bot.rasa_run import rasa_cli

    install_stable_folds()
    rasa_cli()


if __name__ == "__main__":
    main()
