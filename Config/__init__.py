"""Configuration: the typed schema and the loader for Config/assistant.yaml."""
from Config.loader import DEFAULT_CONFIG_PATH, load_config
from Config.schema import LuxaConfig

__all__ = ["DEFAULT_CONFIG_PATH", "LuxaConfig", "load_config"]
