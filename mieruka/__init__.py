"""mieruka (見える化): factory energy metering, waste detection and CO2 accounting.

This core package holds what every part imports: the site config, units of
quantities, the production calendar, the reading/finding models, the recording
format and the store backends.  Protocols live in ``mieruka.collector``,
detectors and the CO2 engine in ``mieruka.analytics``.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("mieruka")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
