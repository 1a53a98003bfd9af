"""callhome: a licence call-home server that keeps no personal data."""
