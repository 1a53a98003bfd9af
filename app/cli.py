"""The `callhome` command: wires each domain's commands into one CLI."""

from __future__ import annotations

import typer

from app.abuse.commands import detect, reports_app
from app.audit.commands import audit
from app.core.auth.commands import tokens_app
from app.customer.commands import offline_app
from app.events.commands import webhooks_app
from app.licences.commands import init, licences_app, machines_app
from app.privacy.commands import maintain, privacy_app, stats
from app.releases.commands import feeds_app, releases_app
from app.server_commands import db_app, keys_app, serve

# Help texts are shown as written: Rich markup would take `[a-z0-9-]` for a style tag.
app = typer.Typer(
    help="callhome: a licence call-home server that keeps no directly identifying data.",
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")
app.add_typer(licences_app, name="licences")
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")
app.add_typer(releases_app, name="releases")
app.add_typer(feeds_app, name="feeds")
app.add_typer(reports_app, name="reports")
app.add_typer(machines_app, name="machines")
app.add_typer(privacy_app, name="privacy")
app.add_typer(offline_app, name="offline")
app.add_typer(webhooks_app, name="webhooks")
app.command("detect")(detect)
app.command("audit")(audit)
app.command("serve")(serve)
app.command("stats")(stats)
app.command("maintain")(maintain)
app.command("init")(init)


def main() -> None:
    app(prog_name="callhome")


if __name__ == "__main__":
    main()
