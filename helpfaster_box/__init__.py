"""HelpFaster Box: a self-hosted appliance serving the HelpFaster REST API."""

__version__ = "0.1.0"
