"""Parameter errors where the true settings are known.

Per parameter, in physical units: dB differences for gains and thresholds, octaves
(``|log2(f_est / f_true)|``) for frequencies, and the plain absolute difference in the
parameter's own unit otherwise (pan units, ratio, Q, ms, reverb fractions). Over all
parameters: the mean absolute error in normalized units (each range mapped to [-1, 1]).
"""

from __future__ import annotations

import numpy as np

from mixinvert.console.schema import CONSOLE_V1, ParamSchema


def error_unit(schema: ParamSchema, name: str) -> str:
    """The unit a parameter's error is reported in (``"oct"`` for frequencies)."""
    unit = schema.spec(name).unit
    return "oct" if unit == "Hz" else unit


def param_errors(
    estimate: np.ndarray, truth: np.ndarray, *, schema: ParamSchema = CONSOLE_V1
) -> dict[str, float]:
    """Mean absolute per-parameter errors over tracks, plus ``"normalized_mae"``.

    Parameters
    ----------
    estimate, truth : np.ndarray [shape=(n_tracks, n_params)], physical units

    Returns
    -------
    dict: ``{name: error in error_unit(name)}`` for every parameter, and
    ``normalized_mae``: mean over tracks and parameters of ``|p_est - p_true|``.
    """
    estimate = schema.validate(np.atleast_2d(estimate))
    truth = schema.validate(np.atleast_2d(truth))
    if estimate.shape != truth.shape:
        raise ValueError(f"estimate {estimate.shape} and truth {truth.shape} differ in shape")
    out: dict[str, float] = {}
    for i, spec in enumerate(schema.specs):
        if spec.unit == "Hz":
            err = np.abs(np.log2(estimate[:, i] / truth[:, i]))
        else:
            err = np.abs(estimate[:, i] - truth[:, i])
        out[spec.name] = float(err.mean())
    out["normalized_mae"] = float(np.abs(schema.normalize(estimate) - schema.normalize(truth)).mean())
    return out
