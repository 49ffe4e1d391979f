"""The errors a user can cause and fix: every one derives from :class:`MixinvertError`.

The command line prints a :class:`MixinvertError` as one line, ``mixinvert: error: ...``,
with exit status 2 (bad input or set-up), as it does an ``OSError`` (the file system
refused: a missing or unreadable file, a full disk). Anything else is a bug: an internal
error, exit status 1, with a request to report it. ``--debug`` shows the traceback of
either. The classes for bad values also derive from ``ValueError`` (and those for files
from the matching ``OSError``), so that callers of the Python API can catch them as such.
"""


class MixinvertError(Exception):
    """Something the user can fix (bad input, a missing program or optional package)."""


class InputError(MixinvertError, ValueError):
    """A value the user gave that cannot be used (an option, a setting, a file's content)."""


class OutputExistsError(MixinvertError, FileExistsError):
    """An output file or folder exists already and may not be overwritten."""


class InputMissingError(MixinvertError, FileNotFoundError):
    """An input file or folder the user named does not exist."""
