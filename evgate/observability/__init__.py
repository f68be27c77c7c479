"""Operating evgate: Prometheus metrics (metrics.py), liveness and readiness (health.py), and
the node endpoints that serve them on their own port (node_app.py). See docs/observability.md.
"""
