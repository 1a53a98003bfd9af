"""callhome: a licence call-home server that keeps no directly identifying data."""
