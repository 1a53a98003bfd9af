"""The audit log read side: what staff did, for staff to read."""
