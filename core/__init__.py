"""The mnemogate host: hook specifications, plugin manager, settings, app factory and shared services."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mnemogate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
