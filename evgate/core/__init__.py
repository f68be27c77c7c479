"""The vocabulary every layer speaks: messages, stream items, the execution context, publish
outcomes, ids and the plugin SPI. It imports nothing of evgate but `evgate.errors`, so the
plugins (entrypoints, endpoints, policies, plan handlers) can share words without importing
the engine that builds them (docs/architecture.md, "Layers")."""
