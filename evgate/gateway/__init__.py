"""The gateway runtime: deployed APIs, routing, plans, flows, and the live sync."""
