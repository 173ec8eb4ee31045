"""User-facing errors: the CLI prints their message as one line and exits with status 2."""


class UserError(Exception):
    """A problem with the user's input (a file, a folder, an option) that they can fix.

    The message must name the file or option and the problem in one line.
    """

    exit_code = 2


class DataError(UserError):
    """A problem with a data set: missing files, unreadable images, masks that do not fit."""


class ModelError(UserError):
    """A problem with model weights or a run folder: not found, incompatible, unsafe format."""


class JSONFileError(UserError, ValueError):
    """A JSON file that cannot be read as JSON (also a ValueError, as json's own errors are)."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (a library's multi-line text), or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
