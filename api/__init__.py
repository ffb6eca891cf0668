"""REST API, reports and dashboard for energy managers."""
