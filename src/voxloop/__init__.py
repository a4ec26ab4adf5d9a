"""voxloop: the intelligence of a voice assistant and the science loop around it."""

from voxloop.errors import ConfigError, DataError, ModelFormatError, VoxloopError
from voxloop.schema import IntentScore, Parse, Span, Utterance

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "IntentScore",
    "ModelFormatError",
    "Parse",
    "Span",
    "Utterance",
    "VoxloopError",
    "__version__",
]
