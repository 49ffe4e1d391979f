"""Progress bars that the caller can switch off or turn into JSON lines.

Library code opens bars with :func:`progress_bar` (same calls as tqdm: ``update``,
``set_postfix_str``, ``n``, used as a context manager) and never decides how they look.
The command line picks the mode for everything that runs under it with
:func:`progress_mode`:

``"auto"``  tqdm on stderr when it is a terminal, nothing otherwise (the default);
``"off"``   nothing (``--quiet``);
``"json"``  one JSON object per line on stdout for each change, at most a few per second
            per bar, plus the final state (``--json``): ``{"event": "progress", "task":
            ..., "done": 3, "total": 10, "unit": "song", "status": "..."}``.

Why not tqdm alone: tqdm can be disabled but has no machine-readable output, and the
mode must reach bars opened deep inside methods without threading a flag through every
signature, hence a context variable.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import sys
import time
from typing import Any, Iterable, Iterator, Literal, TextIO

Mode = Literal["auto", "off", "json"]

_MODE: contextvars.ContextVar[Mode] = contextvars.ContextVar("mixinvert_progress_mode", default="auto")
#: Seconds between two JSON progress lines of one bar (the last state is always written).
JSON_INTERVAL_S = 0.5


def current_mode() -> Mode:
    return _MODE.get()


@contextlib.contextmanager
def progress_mode(mode: Mode) -> Iterator[None]:
    """Run the ``with`` body with progress bars in ``mode`` (see the module doc)."""
    if mode not in ("auto", "off", "json"):
        raise ValueError(f"unknown progress mode {mode!r} (auto, off or json)")
    token = _MODE.set(mode)
    try:
        yield
    finally:
        _MODE.reset(token)


def emit_json(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """Write one JSON line ``{"event": event, **fields}`` and flush (scripts read it live)."""
    stream = stream or sys.stdout
    stream.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    stream.flush()


class _NullBar:
    """A bar that shows nothing but keeps count (code may read ``n``)."""

    def __init__(self, total: int | None = None, **_: Any) -> None:
        self.n = 0
        self.total = total

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_NullBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _JsonBar(_NullBar):
    """A bar that writes its state as JSON lines, throttled, and its last state on close."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", **_: Any) -> None:
        super().__init__(total)
        self.desc, self.unit, self.status = desc, unit, ""
        self._last = -float("inf")
        self._closed = False
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < JSON_INTERVAL_S:
            return
        self._last = now
        emit_json("progress", task=self.desc, done=self.n, total=self.total, unit=self.unit, status=self.status)

    def update(self, n: int = 1) -> None:
        super().update(n)
        self._write(force=self.total is not None and self.n >= self.total)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.status = s
        self._write()

    def set_postfix(self, **kwargs: Any) -> None:
        self.set_postfix_str(", ".join(f"{k}={v}" for k, v in kwargs.items()))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._write(force=True)


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", *, leave: bool = False,
                 enabled: bool = True, **tqdm_kwargs: Any):
    """A progress bar in the current mode (none at all when ``enabled`` is false); use as a
    context manager."""
    mode = _MODE.get()
    if mode == "off" or not enabled:
        return _NullBar(total)
    if mode == "json":
        return _JsonBar(total, desc, unit)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, disable=None, **tqdm_kwargs)


def progress_iter(iterable: Iterable, total: int | None = None, desc: str = "", unit: str = "it", *,
                  enabled: bool = True) -> Iterator:
    """Iterate over ``iterable`` with a progress bar in the current mode."""
    with progress_bar(total, desc, unit, enabled=enabled) as bar:
        for item in iterable:
            yield item
            bar.update(1)
