"""The command line: `helpfaster-box serve | orgs | keys | models | reindex | check`."""

from helpfaster_box.cli.main import main

__all__ = ["main"]
