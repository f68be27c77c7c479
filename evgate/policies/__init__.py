"""Policies: steps of a flow (module name = policy type, registered in evgate.plugins)."""
