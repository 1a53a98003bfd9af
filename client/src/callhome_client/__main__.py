"""Lets `python -m callhome_client` run the command line."""

from ._cli import main

raise SystemExit(main())
