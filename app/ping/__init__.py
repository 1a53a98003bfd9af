"""The hot path: POST /v1/ping, from request to signed answer, in one place."""
