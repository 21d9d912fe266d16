"""Errors a user can fix by changing the config, the data or the checkpoint."""


class ConfigError(ValueError):
    """A config value is unknown or invalid; the message names the key and the fix."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a mathml/Lightning checkpoint."""
