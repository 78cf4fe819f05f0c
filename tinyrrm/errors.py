"""The project's error base and its two generic kinds.

Imports nothing, so every stage (and the lean HIL image) can use it.
"""

from __future__ import annotations


class TinyrrmError(Exception):
    """An error the user can fix: a bad option, a bad or mismatched input file, a model that
    does not fit its target, a tool chain or a target that does not answer.

    Its message is one line that names what is wrong (the CLI prints it as
    ``tinyrrm: error: <message>`` and exits with code 2; lines after the first, such as a
    compiler's output, follow indented). Any other exception is a bug of tinyrrm and keeps
    its traceback.
    """


class UsageError(TinyrrmError, ValueError):
    """A bad option or configuration value: a rank, mode, target, backend, learning rate."""


class InputError(TinyrrmError, ValueError):
    """Data handed to a stage that it cannot use: an array of the wrong shape, NaN weights,
    a report or record file of the wrong kind."""
