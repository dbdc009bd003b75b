"""The forecaster's MLflow model format: a pyfunc with a custom ``PythonModel``.

Why not ``mlflow.pytorch.log_model``: outside Databricks it now saves a ``torch.export`` program,
which fixes the batch/sequence shapes to the input example's and loads as a module that cannot
``.train()`` again (docs/STACK_NOTES.md). Here the artifact is a plain torch file holding the state_dict,
the :class:`TrainConfig`, the series index, the step and the calendar zone; the module is rebuilt
from code on load, so the same artifact serves (pyfunc ``predict``) and trains further
(:func:`load_for_training`).

pyfunc input: one row per forecast = ``series_id`` (str), ``origin`` (datetime, UTC; the timestamp
of the last input value), ``window`` (L floats, oldest first), exactly the Feast window feature.
pyfunc output: one row per (series, origin, step) = ``series_id``, ``origin``, ``step`` (1..H),
``timestamp``, ``forecast`` and, for a quantile model, ``q<level>`` columns (``q0.1`` ...).

The loaded pyfunc imports ``training`` from the installed ``seqops`` package: serve it from the
project's environment (the model's ``pip_requirements`` pin torch/mlflow/numpy/pandas/pydantic).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

from seqops.core.windows import WindowSet, windows_from_arrays
from seqops.training.config import TrainConfig
from seqops.training.model import LSTMForecaster
from seqops.training.train import predict as predict_windows

ARTIFACT_KEY = "forecaster"
_BUNDLE_FILE = "forecaster.pt"


@dataclass
class ForecasterBundle:
    """Everything needed to rebuild, run and train the model again."""

    model: LSTMForecaster
    config: TrainConfig
    series_ids: tuple[str, ...]
    step: np.timedelta64
    calendar_tz: str
    n_calendar: int

    def windows(self, frame: pd.DataFrame) -> WindowSet:
        """Model input from a pyfunc-style frame (``series_id``, ``origin``, ``window``)."""
        missing = {"series_id", "origin", "window"} - set(frame.columns)
        if missing:
            raise ValueError(f"input frame lacks {sorted(missing)}")
        lengths = {len(w) for w in frame["window"]}
        if lengths != {self.config.input_size}:
            raise ValueError(f"every window must hold {self.config.input_size} values, got lengths {lengths}")
        return windows_from_arrays(
            frame["series_id"].astype(str).tolist(),
            frame["origin"],
            frame["window"].tolist(),
            horizon=self.config.horizon,
            series_ids=self.series_ids,
            step=self.step,
            scaler=self.config.scaler,
            calendar=self.n_calendar > 0,
            calendar_tz=self.calendar_tz,
        )

    def forecast_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Long forecast frame (see the module docstring) for an input frame of windows."""
        ws = self.windows(frame)
        pred = predict_windows(self.model, ws)
        n, h = len(ws), ws.horizon
        out = pd.DataFrame(
            {
                "series_id": np.repeat(frame["series_id"].astype(str).to_numpy(), h),
                "origin": np.repeat(ws.origin, h),
                "step": np.tile(np.arange(1, h + 1, dtype=np.int64), n),
                "timestamp": ws.target_timestamps().ravel(),
            }
        )
        if pred.ndim == 2:
            out["forecast"] = pred.ravel().astype(np.float32)
        else:
            qs = self.config.quantiles
            mid = int(np.argmin([abs(q - 0.5) for q in qs]))
            out["forecast"] = pred[..., mid].ravel().astype(np.float32)
            for i, q in enumerate(qs):
                out[f"q{q:g}"] = pred[..., i].ravel().astype(np.float32)
        return out

    def save(self, path: Path) -> None:
        torch.save(
            {
                "state_dict": self.model.state_dict(),
                "config": self.config.model_dump(mode="json"),
                "series_ids": list(self.series_ids),
                "step_ns": int(self.step.astype("timedelta64[ns]").astype(np.int64)),
                "calendar_tz": self.calendar_tz,
                "n_calendar": self.n_calendar,
            },
            path,
        )

    @classmethod
    def load(cls, path: Path | str) -> ForecasterBundle:
        raw = torch.load(path, map_location="cpu", weights_only=False)
        config = TrainConfig(**raw["config"])
        model = LSTMForecaster.from_config(
            config, n_series=len(raw["series_ids"]), n_calendar=raw["n_calendar"]
        )
        model.load_state_dict(raw["state_dict"])
        model.eval()
        return cls(
            model=model,
            config=config,
            series_ids=tuple(raw["series_ids"]),
            step=np.timedelta64(raw["step_ns"], "ns"),
            calendar_tz=raw["calendar_tz"],
            n_calendar=raw["n_calendar"],
        )


class ForecasterPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: loads the :class:`ForecasterBundle` artifact, forecasts a frame of windows."""

    def load_context(self, context: Any) -> None:
        self.bundle = ForecasterBundle.load(context.artifacts[ARTIFACT_KEY])

    # No type hints here on purpose: MLflow would read them as a second, conflicting schema.
    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201
        return self.bundle.forecast_frame(pd.DataFrame(model_input))


def signature(config: TrainConfig) -> ModelSignature:
    """The pyfunc's input and output schema."""
    outputs = [
        ColSpec("string", "series_id"),
        ColSpec("datetime", "origin"),
        ColSpec("long", "step"),
        ColSpec("datetime", "timestamp"),
        ColSpec("float", "forecast"),
    ] + [ColSpec("float", f"q{q:g}") for q in config.quantiles]
    inputs = [
        ColSpec("string", "series_id"),
        ColSpec("datetime", "origin"),
        ColSpec(Array("double"), "window"),  # JSON numbers; cast to float32 like the Feast feature
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def input_example(ws: WindowSet, rows: int = 2) -> pd.DataFrame:
    """A pyfunc input frame from the first ``rows`` windows of ``ws``."""
    n = min(rows, len(ws))
    return pd.DataFrame(
        {
            "series_id": [ws.series_ids[i] if i >= 0 else "unknown" for i in ws.series_idx[:n]],
            "origin": pd.DatetimeIndex(ws.origin[:n]),
            "window": [row.astype(np.float64).tolist() for row in ws.x[:n]],
        }
    )


def pip_requirements() -> list[str]:
    """Explicit pins (naming them skips MLflow's slow requirement inference)."""
    import pydantic

    return [
        f"torch=={torch.__version__.split('+')[0]}",
        f"mlflow=={mlflow.__version__}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
        f"pydantic=={pydantic.VERSION}",
    ]


def log_model(
    bundle: ForecasterBundle,
    *,
    name: str = "model",
    example: WindowSet | None = None,
    registered_model_name: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log the forecaster as a pyfunc model in the active MLflow run.

    Args:
        bundle: model, config, series index, step and calendar zone (see :func:`bundle_from_fit`).
        name: the model's name in the run.
        example: windows whose first rows become the input example (recommended).
        registered_model_name: also register a new version under this name.
        metadata: extra MLmodel metadata (e.g. the training data's version).

    Returns:
        MLflow's ModelInfo (``model_uri`` loads it back).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / _BUNDLE_FILE
        bundle.save(path)
        (Path(tmp) / "config.json").write_text(json.dumps(bundle.config.model_dump(mode="json"), indent=2))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=ForecasterPyfunc(),
            artifacts={ARTIFACT_KEY: str(path), "config": str(Path(tmp) / "config.json")},
            signature=signature(bundle.config),
            input_example=input_example(example) if example is not None else None,
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model_name,
            metadata={"seqops_format": "lstm-forecaster-v1", **(metadata or {})},
        )


def bundle_from_fit(result: Any, windows: WindowSet) -> ForecasterBundle:
    """Bundle a :class:`seqops.training.train.FitResult` with the step and zone of its training windows."""
    return ForecasterBundle(
        model=result.model,
        config=result.config,
        series_ids=tuple(result.series_ids),
        step=windows.step,
        calendar_tz=windows.calendar_tz,
        n_calendar=result.n_calendar,
    )


def load_for_inference(model_uri: str) -> mlflow.pyfunc.PyFuncModel:
    """The pyfunc: ``.predict(frame of series_id/origin/window)`` -> long forecast frame."""
    return mlflow.pyfunc.load_model(model_uri)


def load_bundle(model_uri: str) -> ForecasterBundle:
    """Model, config, series index, step and calendar zone of a logged forecaster."""
    local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri)
    return ForecasterBundle.load(Path(local) / "artifacts" / _BUNDLE_FILE)


def load_for_training(model_uri: str) -> tuple[LSTMForecaster, TrainConfig]:
    """The logged module (in train mode, on CPU) and its config, ready for ``seqops.training.train.fit``."""
    bundle = load_bundle(model_uri)
    bundle.model.train()
    return bundle.model, bundle.config
