"""The application layer's runs: analysis runs and their cache (`context`,
`analysis`), the CO2 sheet from metered data (`co2sheet`), provenance and
replay (`replay`), the collector's status (`collector_status`), day profiles
(`profile`).  Above core, collector and analytics; below the API and the CLI,
which both call it.  Raises mieruka.errors, never HTTP errors."""
