"""The customer's side: what the holder of a licence key does without asking staff."""
