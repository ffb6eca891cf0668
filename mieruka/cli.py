"""The `mieruka` command.

Subcommands are loaded lazily (one module each in `mieruka.commands`) so that
`mieruka --help` and light commands start fast on a small gateway.  Errors
worded for people (`MierukaError`) end with one line on stderr and exit code 2;
never a traceback.
"""
from __future__ import annotations

import difflib
import importlib
import logging
import sys

import click

from . import __version__
from .errors import MierukaError

# name -> (module in mieruka.commands, one-line help shown in `mieruka --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Run the whole demo on the embedded store: simulate, collect, analyse, report."),
    "check": ("check", "Validate a site config and print what it describes."),
    "co2": ("co2", "CO2 and cost sheet (Scope 1/2, fiscal year) from a CSV of energy amounts."),
    "simulate": ("simulate", "Serve a simulated factory over Modbus TCP, or write a recording with ground truth."),
    "collect": ("collect", "Poll the site's meters (Modbus, MQTT) into the store."),
    "export": ("export", "Write readings from the store as a recording (CSV, format v1)."),
    "analyze": ("analyze", "Find standby waste, air leaks, baseline gaps and compressor profiles."),
    "fleet": ("fleet", "Many sites on Dask: fleet analysis, league table, the company's CO2 sheet."),
    "import": ("import_", "Turn logger/spreadsheet exports (CSV, Shift_JIS, .xlsx) into a recording, with a mapping."),
    "replay": ("replay", "Load a recording into the store, analyse it and write the report (auditors)."),
    "demand": ("demand", "30-minute demand (デマンド), monthly maxima, 契約電力 and the top peaks."),
    "bill": ("bill", "Monthly electricity bill estimate: 基本料金, 電力量料金, 燃料費調整額, 再エネ賦課金, tax."),
    "serve": ("serve", "Serve the REST API, reports and dashboard."),
    "status": ("status", "Show collector health at the gateway."),
    "scan": ("scan", "Find the Modbus unit ids (and serial settings) that answer; read-only."),
    "probe": ("probe", "Find a meter's word order and address base; print the [[meters]] block to paste."),
    "backup": ("backup", "Back up the store, buffer and config into one archive (safe while collecting)."),
    "restore": ("restore", "Restore a backup archive (checks every sha256; refuses while a collector runs)."),
    "notify-test": ("notify_test", "Send one test event to every [[notify]] target (webhook, SMTP)."),
}


# other spellings people type (British English, as the help texts write it)
ALIASES = {"analyse": "analyze"}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        name = ALIASES.get(name, name)
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"mieruka.commands.{COMMANDS[name][0]}")
        return module.command

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if args and self.get_command(ctx, name) is None and not name.startswith("-"):
            close = difflib.get_close_matches(name, list(COMMANDS) + list(ALIASES), n=1, cutoff=0.6)
            hint = f" Did you mean {ALIASES.get(close[0], close[0])!r}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # list the one-line help without importing every command module
        with formatter.section("Commands"):
            formatter.write_dl([(n, h) for n, (_, h) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mieruka")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """mieruka (見える化): meter a factory's utilities, find the energy it wastes,
    and put every finding in kWh, yen and t-CO2."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="mieruka", standalone_mode=False)
    except MierukaError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as e:
        e.show()
        return 2
    except click.UsageError as e:     # one line, like every other error (a directory given for a file, ...)
        cmd = e.ctx.command_path if e.ctx is not None else "mieruka"
        click.echo(f"error: {e.format_message()} (see `{cmd} --help`)", err=True)
        return 2
    except click.ClickException as e:
        e.show()
        return 2 if e.exit_code == 1 else e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except MemoryError:         # a recording far larger than this machine's memory: say so, no traceback
        click.echo("error: out of memory for this input; split it (a recording by month, say) "
                   "or run on a machine with more memory", err=True)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as e:        # a file or folder the command could not use: name it, no traceback
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"error: {where}{e.strerror or e}", err=True)
        return 2
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
