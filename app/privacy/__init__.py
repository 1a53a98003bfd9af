"""What reads across the store to keep the privacy promise: retention, day keys, erasure."""
