"""The staff web page: server-rendered pages over the services the staff API uses."""
