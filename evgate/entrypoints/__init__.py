"""Entrypoints: the client-facing side of an API (module name = definition type)."""
