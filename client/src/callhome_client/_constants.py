"""Timeouts, retry caps and protocol limits of the callhome client, in one place."""

from __future__ import annotations

import httpx

__version__ = "0.1.0"

PING_PATH = "/v1/ping"
DEACTIVATE_PATH = "/v1/machines/deactivate"
SIGNATURE_HEADER = "Callhome-Signature"

MAX_REQUEST_BYTES = 4 * 1024
# A real answer is a few KiB; the cap keeps a hostile server from filling memory.
MAX_ANSWER_BYTES = 256 * 1024

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

# A fresh answer's nonce proves it fresh; its server_time then sets this machine's clock
# skew. A skew beyond this is a broken clock (or a forged time): the answer is refused.
DEFAULT_MAX_AGE_S = 86400.0

# A file checked with no network has no nonce to measure the clock by: one issued more
# than this after this machine's clock time means the clock was turned back.
MAX_OFFLINE_CLOCK_BEHIND_S = 300.0

# The clock seen at offline checks is written to the trust record when it has moved on this
# far (a lease or licence file found over, at once): a product may ask for its verdict in a
# loop, and a set-back is refused only beyond MAX_OFFLINE_CLOCK_BEHIND_S anyway.
CLOCK_RECORD_INTERVAL_S = 60.0

# Writers sharing a trust record file take turns under a lock; one held longer than this
# (a process hung mid-write) is gone around, merging without it, so a product never hangs.
RECORD_LOCK_WAIT_S = 1.0

NONCE_BYTES = 24

# Spreads a fleet's check-ins so that installs started together do not call together.
JITTER_FRACTION = 0.1
# Guards against a server answer of 0 seconds turning the scheduler into a busy loop.
MIN_CHECK_IN_INTERVAL_S = 60.0

BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0
# Each backoff wait is drawn from [1 - fraction, 1] of its nominal length, never beyond the cap.
BACKOFF_JITTER_FRACTION = 0.5
# Failures beyond this many no longer double the wait (it has reached the cap long before).
MAX_BACKOFF_DOUBLINGS = 16

# A Retry-After beyond a day is read as a day, so a wrong header cannot silence a client for good.
MAX_RETRY_AFTER_S = 86400.0

# With a pinned root, the key list is fetched again this often (and whenever an answer is
# signed by an unknown key): the longest a retired signing key goes on being trusted.
KEY_LIST_REFRESH_S = 6 * 3600.0
