"""Translations between chat platforms and `Engine.answer(Query) -> Reply`."""
