"""One module per `mieruka` subcommand; each exposes a click command named ``command``."""

import math

import click


class FiniteFloat(click.FloatRange):
    """A FloatRange that refuses inf and nan ("1e400" parses as inf and slips past
    any bound; nan compares false with every bound)."""

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v

    def _describe_range(self) -> str:
        return f"finite, {super()._describe_range()}"


POSITIVE = FiniteFloat(min=0, min_open=True)     # kW, seconds: more than zero


def console(**kw):
    """A rich Console that prints text as written.  Site and meter names, tags, paths,
    finding texts and `[target]` columns hold square brackets that rich's markup would
    eat (`standby [press_power]` printed as `standby `) or refuse with a MarkupError
    traceback (`[/red]` in a site name); own emphasis goes through `style=` instead."""
    from rich.console import Console
    return Console(markup=False, **kw)
