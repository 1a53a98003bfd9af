"""The outbox: events recorded in the transaction of the change that causes them."""
