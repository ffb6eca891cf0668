"""Errors a person can act on.

Anything raised as a :class:`MierukaError` is printed by the CLI as one clear
line (naming the file, line or field) and ends the command with exit code 2,
never with a traceback.
"""


class MierukaError(Exception):
    """A problem with the user's input or environment, worded for the user."""

    exit_code = 2


class ConfigError(MierukaError):
    """The site config is invalid: the message names the file, the key and the problem."""


class InputError(MierukaError):
    """An input file (CSV, recording) is invalid: the message names the file, line and field."""
