"""Rasa SDK custom actions (カスタムアクション). Thin: the logic lives in procedures/."""
