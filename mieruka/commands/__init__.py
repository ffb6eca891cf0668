"""One module per `mieruka` subcommand; each exposes a click command named ``command``."""
