"""The batch writer: pings are group-committed, and answered only once durable."""
