"""The MLflow model format: log to a throw-away SQLite store, load back for serving and for training."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from seqops.core.windows import split_last_origins, windows_from_frame
from seqops.registry.packaging import (
    bundle_from_fit,
    input_example,
    load_bundle,
    load_for_inference,
    load_for_training,
    log_model,
    pip_requirements,
)
from seqops.training.config import make_config
from seqops.training.train import fit, predict


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = mlflow.create_experiment(
        "pyfunc-test", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    yield experiment_id
    mlflow.set_tracking_uri(previous)


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    t = np.arange(24 * 12)
    parts = []
    for i in range(3):
        v = 100.0 + 10 * i + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, len(t))
        stamps = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(t, "h")
        parts.append(pd.DataFrame({"series_id": f"zone-{i}", "timestamp": stamps, "value": v}))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("quantiles", [(), (0.1, 0.5, 0.9)])
def test_pyfunc_round_trip_serves_and_trains_again(tracking: str, quantiles: tuple[float, ...]) -> None:
    cfg = make_config(
        input_size=48, horizon=12, patch_len=12, hidden_size=16, num_layers=1, decoder_size=16,
        embedding_dim=3, calendar=True, val_origins=4, max_epochs=2, quantiles=quantiles, num_threads=1,
    )  # fmt: skip
    ws = windows_from_frame(frame(), cfg.input_size, cfg.horizon, scaler=cfg.scaler, calendar=True)
    train, val = split_last_origins(ws, cfg.val_origins)
    result = fit(train, val, cfg)
    bundle = bundle_from_fit(result, ws)
    with mlflow.start_run(experiment_id=tracking):
        info = log_model(bundle, example=val)

    # serving path: the pyfunc on a frame of windows, as the feature store hands them over
    served = load_for_inference(info.model_uri)
    request = input_example(val, rows=len(val))
    out = served.predict(request)
    expected = predict(result.model, val)
    point = expected if not quantiles else expected[..., 1]
    assert len(out) == len(val) * cfg.horizon
    assert out["step"].tolist()[: cfg.horizon] == list(range(1, cfg.horizon + 1))
    np.testing.assert_array_equal(out["forecast"].to_numpy(), point.ravel())
    np.testing.assert_array_equal(
        pd.DatetimeIndex(out["timestamp"]).tz_localize(None).to_numpy()
        if pd.DatetimeIndex(out["timestamp"]).tz is not None
        else out["timestamp"].to_numpy(),
        val.target_timestamps().ravel(),
    )
    for i, q in enumerate(quantiles):
        np.testing.assert_array_equal(out[f"q{q:g}"].to_numpy(), expected[..., i].ravel())
    # the signature names the window array; requirements are the explicit pins
    schema = served.metadata.get_input_schema()
    assert schema.input_names() == ["series_id", "origin", "window"]
    reqs = (Path(mlflow.artifacts.download_artifacts(info.model_uri)) / "requirements.txt").read_text()
    assert all(pin in reqs for pin in pip_requirements())

    # training path: the same weights, in train mode, and a further step changes them
    model, config = load_for_training(info.model_uri)
    assert config == result.config and model.training
    assert config.skip_period == 24 == model.season  # the period fit chose travels with the model
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    assert load_bundle(info.model_uri).series_ids == ws.series_ids
    before = {k: v.clone() for k, v in model.state_dict().items()}
    more = fit(train, val, config.model_copy(update={"max_epochs": 1, "lr": 1e-2}), init_model=model)
    assert len(more.history) == 1
    changed = [k for k, v in more.model.state_dict().items() if not torch.equal(v, before[k])]
    assert "lstm.weight_hh_l0" in changed


def test_unknown_series_and_wrong_window_lengths(tracking: str) -> None:
    cfg = make_config(input_size=48, horizon=12, patch_len=12, hidden_size=8, num_layers=1, decoder_size=8,
                      embedding_dim=2, val_origins=4, max_epochs=1, num_threads=1)  # fmt: skip
    ws = windows_from_frame(frame(), cfg.input_size, cfg.horizon, scaler=cfg.scaler, calendar=True)
    result = fit(ws, None, cfg)
    with mlflow.start_run(experiment_id=tracking):
        info = log_model(bundle_from_fit(result, ws), example=ws)
    served = load_for_inference(info.model_uri)
    request = input_example(ws, rows=2).assign(series_id=["zone-0", "new-zone"])
    out = served.predict(request)
    assert out["series_id"].unique().tolist() == ["zone-0", "new-zone"]
    assert np.isfinite(out["forecast"]).all()
    short = request.assign(window=[w[:24] for w in request["window"]])
    with pytest.raises(Exception, match="48 values"):
        served.predict(short)
