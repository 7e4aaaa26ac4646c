"""Procedures catalogue (手続きカタログ): data per city, its loader/validator, search and answers.

Importable from both virtual environments (rasa and action server/gateway).
"""
