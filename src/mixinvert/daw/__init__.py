"""Export of recovered console settings to other programs (DAWproject sessions)."""

from __future__ import annotations

from mixinvert.daw.dawproject import describe_dawproject_limits, export_dawproject

__all__ = ["describe_dawproject_limits", "export_dawproject"]
