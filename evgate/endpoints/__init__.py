"""Endpoints: the backend side of an API (module name = definition type)."""
