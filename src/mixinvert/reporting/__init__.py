"""The HTML reports: one self-contained page per inversion, one per evaluation.

- :func:`build_report`: ``OUT_DIR/report.html`` from what ``invert`` wrote (settings as
  channel strips, EQ and compressor curves, spectrograms, players for every mix and solo).
- :func:`write_evaluation_report`: the Table 1 comparison of ``evaluate`` with per-song plots.

Modules: :mod:`.curves` (the numbers behind the plots), :mod:`.plots` (matplotlib, data in,
PNG out), :mod:`.media` (data URIs, Ogg Vorbis), :mod:`.html` (the page), :mod:`.build`,
:mod:`.evaluation`, :mod:`.browser` (headless Chromium, for tests and screenshots).
"""

from mixinvert.reporting.build import build_report
from mixinvert.reporting.evaluation import write_evaluation_report

__all__ = ["build_report", "write_evaluation_report"]
