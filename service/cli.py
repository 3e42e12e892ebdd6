"""The `flask` commands: one module per group under service/commands/."""

from __future__ import annotations

import importlib

from flask import Flask

COMMAND_MODULES = ("therapist", "demo", "jobs", "web", "feeds", "meetings", "sms")


def init_app(app: Flask) -> None:
    """Register every command group."""
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"service.commands.{name}")
        app.cli.add_command(module.group)
