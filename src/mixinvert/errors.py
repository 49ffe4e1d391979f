"""The one base class for errors a user can fix that are not a ``ValueError`` or ``OSError``.

The command line prints every :class:`MixinvertError`, ``ValueError`` and ``OSError`` as
one line, ``mixinvert: error: ...``, with exit status 2 (bad input or set-up); anything
else is an internal error (exit status 1). ``--debug`` shows the traceback of either.
"""


class MixinvertError(Exception):
    """Something the user can fix (a missing program, a missing optional package)."""
