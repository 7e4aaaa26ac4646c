"""``python -m bot.nlu.seeded_rasa test nlu --cross-validation ...``: the ``rasa`` command with the
same cross-validation folds on every run (rasa venv only).

Rasa 3.6 draws the folds of ``rasa test nlu --cross-validation`` with
``StratifiedKFold(n_splits=n, shuffle=True)`` and no ``random_state`` (``generate_folds`` in
``rasa/nlu/test.py``), i.e. from numpy's global random state, which nothing seeds. Two runs of
``make evaluate`` on the same data and config therefore test every example in a different fold
and their numbers differ although nothing changed. Seeding numpy's and Python's global random
generators with :data:`FOLD_SEED` before rasa starts makes the split the same on every run (scikit-learn:
``random_state=None`` uses "the RandomState singleton used by np.random",
https://scikit-learn.org/stable/glossary.html#term-random_state), so two configs are compared on
the same folds. The models themselves are seeded by ``random_seed`` in the config.

Adding or removing examples still changes the split (StratifiedKFold deals the examples of each
intent out in shuffled order), so before/after comparisons of an import round keep some noise.
"""
from __future__ import annotations

import random
import sys

#: Seed of numpy's and Python's global random generators; any fixed value gives fixed folds.
FOLD_SEED = 20261121


def seed_global_rngs(seed: int = FOLD_SEED) -> None:
    """Seed numpy's global RandomState and Python's ``random`` (both used when rasa splits folds)."""
    import numpy

    numpy.random.seed(seed)
    random.seed(seed)


def main() -> None:
    """Seed the global random generators, then run rasa's CLI with the given arguments."""
    seed_global_rngs()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
