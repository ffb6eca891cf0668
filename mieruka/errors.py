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


# The application layer's own errors (mieruka.service, mieruka.reports).  They
# know nothing of HTTP: the API maps them to problem+json in one handler
# (api/errors.py: NotFound -> 404, Invalid -> 422, Conflict -> 409, any other
# MierukaError -> 422), and the CLI prints them as one line with exit 2.
class NotFound(MierukaError):
    """The thing asked for (a channel, a run) does not exist."""


class Invalid(MierukaError):
    """The request is well formed but cannot be served as asked (an empty or too
    long range, a factor missing from the factor set, a bad bill row)."""


class Conflict(MierukaError):
    """The request clashes with the current state (e.g. a run already under way)."""
