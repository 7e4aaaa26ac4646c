"""Custom Rasa NLU graph components and Japanese text processing (日本語の自然言語処理).

Importable from both virtual environments: it needs only sudachipy (and rasa for the components).
"""
