"""Background jobs that every node runs on a timer, claimed so each runs once per period."""
