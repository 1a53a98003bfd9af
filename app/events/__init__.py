"""Webhooks: the vendor's endpoints, and the delivery of the outbox's events to them."""
