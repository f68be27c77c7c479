"""evgate: an event-native API gateway between Kafka and the HTTP world."""

__version__ = "0.1.0"
