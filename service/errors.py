"""Errors the core raises for the edges (API, dashboard, CLI) to answer: invalid field, conflict."""

from __future__ import annotations


class Invalid(ValueError):
    """A value breaks a rule only the core can check (e.g. an unknown meeting id): a 422."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(RuntimeError):
    """The request clashes with the record's state (e.g. changing an archived plan): a 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
