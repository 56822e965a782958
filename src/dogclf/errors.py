"""Exception types raised for user mistakes; the CLI prints them as one line."""

from __future__ import annotations


class DogclfError(Exception):
    """Base class for errors caused by input the user can fix."""


class ConfigError(DogclfError):
    """A configuration value or file is invalid."""


class DatasetError(DogclfError):
    """A dataset folder, split or image is unusable."""


class ModelError(DogclfError):
    """A model name, weights file or checkpoint is unusable."""


class ArtifactError(DogclfError):
    """A saved model artifact is missing, incomplete or unsafe."""
