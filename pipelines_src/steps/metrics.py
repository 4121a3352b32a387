"""The regression metrics a model is judged by, shared by the steps that score one.

Evaluate (the XGBoost image) scores a new model and the champion on the test split; the
model-quality check (quality.py, the scikit-learn image) scores the served model on the
labelled predictions of a window. Both use ``regression_metrics``, so a metric means the
same in the registry's metadata and in the quality report. numpy only: it runs on both images.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GOALS = ("minimize", "maximize")
METRICS = ("mse", "rmse", "mae", "r2")

FloatArray = npt.NDArray[np.float64]


def regression_metrics(actual: FloatArray, predicted: FloatArray) -> dict[str, float]:
    """mse, rmse, mae and r2 of ``predicted`` against ``actual``."""
    errors = actual - predicted
    mse = float(np.mean(errors**2))
    variance = float(np.mean((actual - actual.mean()) ** 2))
    return {
        "mse": mse,
        "rmse": mse**0.5,
        "mae": float(np.mean(np.abs(errors))),
        "r2": 1.0 - mse / variance if variance > 0 else 0.0,
    }
