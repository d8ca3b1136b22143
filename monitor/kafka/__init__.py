"""Kafka plumbing: an embedded broker for tests and demos, topic administration."""
