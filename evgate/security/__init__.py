"""Plans on the gateway: which plan admits a request (key-less, api-key, jwt, push)."""
