"""Settings of a DTIM node: declarations, loading and the config template."""

from dtim.config.home import NodeHome, resolve_home
from dtim.config.loader import LoadedSettings, config_path, load_settings
from dtim.config.settings import Settings
from dtim.config.template import describe_settings, render_config

__all__ = [
    "LoadedSettings",
    "NodeHome",
    "Settings",
    "config_path",
    "describe_settings",
    "load_settings",
    "render_config",
    "resolve_home",
]
