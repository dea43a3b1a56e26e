"""Exceptions raised while wiring, exporting and rebuilding module graphs.

Each one says what was expected, what was found, and where, so a user can fix the script or file.
"""

__all__ = [
    "NmodError",
    "DataFormatError",
    "CheckpointError",
    "MissingFileError",
    "NeuralPortNameMismatchError",
    "NeuralPortMissingError",
    "NeuralPortNmTensorMismatchError",
    "NeuralTensorShapeError",
    "GraphCycleError",
    "GraphError",
    "ConfigError",
    "ConfigParseError",
    "ConfigFieldError",
    "ConfigClassMismatchError",
    "ConfigExportError",
]


class NmodError(Exception):
    """Base of the errors nmod raises on purpose, each with a message a person can act on.

    Recipes print these as one line (`error: <message>`, exit status 2) instead of a traceback.
    """


class DataFormatError(NmodError, ValueError):
    """A data file cannot be used as it is: unreadable, empty, or not in the expected format."""


class CheckpointError(NmodError, ValueError):
    """A checkpoint (nmod's folders, Megatron-LM's or Hugging Face's files) cannot be used."""


class MissingFileError(NmodError, FileNotFoundError):
    """A file that was named, or that a named folder should hold, does not exist."""


class NeuralPortNameMismatchError(NmodError, KeyError):
    """A module was called with a port name it does not declare."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class NeuralPortMissingError(NeuralPortNameMismatchError):
    """A required input port was left unconnected."""


class NeuralPortNmTensorMismatchError(NmodError, TypeError):
    """A tensor's neural type is not accepted by the port it was fed to."""


class NeuralTensorShapeError(NmodError, ValueError):
    """In debug mode, a real tensor's shape disagrees with its port's declared axes."""


class GraphError(NmodError, ValueError):
    """A graph cannot be built from what was given."""


class GraphCycleError(GraphError):
    """The module calls depend on each other in a loop."""


class ConfigError(NmodError, ValueError):
    """A configuration is wrong or incomplete: a module or graph config file, a model's settings, a flag."""


class ConfigParseError(ConfigError):
    """The file is not valid YAML."""


class ConfigFieldError(ConfigError):
    """A required field is missing or has the wrong kind of value."""


class ConfigClassMismatchError(ConfigError):
    """The file describes another class than the one asked to import it."""


class ConfigExportError(ConfigError):
    """An init parameter is not a primitive, list or dict, so it cannot be written to YAML."""
