"""The service layer: every business rule once, under both the REST API and the CLI."""
