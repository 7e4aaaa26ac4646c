"""Rasa graph component: rasa's ``SpacyNLP`` with a configurable list of spaCy pipes left out.

Rasa 3.6 loads the spaCy model with ``spacy.load(name, disable=["parser"])``, so for GiNZA's
``ja_ginza`` every message still runs ``tok2vec``, ``ner``, ``morphologizer``,
``compound_splitter`` and ``bunsetu_recognizer``. None of their outputs is used by our pipeline:

* ``GinzaTokenizer`` reads ``token.text``, ``token.idx``, ``token.norm_`` and ``token.tag_``, which
  GiNZA's tokenizer (SudachiPy) sets before any pipe runs;
* ``SpacyFeaturizer`` reads ``token.vector`` / ``doc.vector``, the model's static word vectors
  (``nlp.vocab.vectors``), not ``tok2vec``'s tensor.

Measured on the 2,027 training examples of data/nlu (``/tmp``-free check in
tests/rasa_env/test_spacy_nlp.py): identical tokens, offsets, norms, tags and vectors with
``exclude: [tok2vec, parser, ner, morphologizer, compound_splitter, bunsetu_recognizer]``, and
0.15 ms instead of 9-11 ms of spaCy per message — 15 % of the rasa server's CPU time in the py-spy
profile of ``make bench``. Components that need a pipe (rasa's ``SpacyEntityExtractor`` needs
``ner``) must not list it in ``exclude``.

Config (config.yml)::

    - name: bot.nlu.spacy_nlp.SpacyNLP
      model: ja_ginza
      exclude: [tok2vec, parser, ner, morphologizer, compound_splitter, bunsetu_recognizer]

Without ``exclude`` it behaves exactly like rasa's ``SpacyNLP`` (``parser`` disabled). The class
keeps the name ``SpacyNLP`` on purpose: rasa's recipe finds the model provider of
``SpacyTokenizer``/``SpacyFeaturizer`` by the class name (``model_from="SpacyNLP"`` in
``rasa/engine/recipes/default_recipe.py``, ``_get_model_provider_needs``).
Source: https://spacy.io/api/top-level#spacy.load (``exclude``), rasa 3.6 ``rasa/nlu/utils/spacy_utils.py``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.utils import spacy_utils
from rasa.nlu.utils.spacy_utils import SpacyModel

#: rasa 3.6's own choice (``spacy.load(name, disable=["parser"])``).
RASA_DEFAULT_EXCLUDE = ["parser"]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MODEL_LOADER, DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER],
    is_trainable=False,
    model_from="SpacyNLP",
)
class SpacyNLP(spacy_utils.SpacyNLP):
    """rasa's SpacyNLP whose spaCy model runs without the pipes named in config ``exclude``."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """rasa's defaults plus ``exclude`` (list of spaCy pipe names; default ``["parser"]``)."""
        return {**spacy_utils.SpacyNLP.get_default_config(), "exclude": list(RASA_DEFAULT_EXCLUDE)}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SpacyNLP":
        """Loads the model as rasa does, then removes the ``exclude`` pipes.

        Raises:
            rasa.nlu.model.InvalidModelError: model missing or incompatible (as rasa).
            ValueError: ``exclude`` names a pipe the model does not have (a typo would otherwise
                silently keep the slow pipe).
        """
        merged = {**cls.get_default_config(), **config}
        loaded = cls.load_model(merged.get("model"))
        cls.ensure_proper_language_model(loaded.model)
        exclude: List[Text] = list(merged.get("exclude") or [])
        nlp = loaded.model
        known = set(nlp.component_names)
        unknown = [name for name in exclude if name not in known]
        if unknown:
            raise ValueError(
                f"SpacyNLP exclude: the spaCy model {merged.get('model')!r} has no pipe named "
                f"{', '.join(unknown)} (pipes: {', '.join(nlp.component_names)})"
            )
        for name in exclude:
            nlp.remove_pipe(name)
        # The fingerprint names what runs, so cached featurizations never mix two pipelines.
        suffix = "" if exclude == RASA_DEFAULT_EXCLUDE else "-without-" + "-".join(sorted(exclude))
        return cls(SpacyModel(model=nlp, model_name=f"{loaded.model_name}{suffix}"), merged)
