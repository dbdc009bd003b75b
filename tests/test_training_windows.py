"""Windowing by known indices, scaling round trips, calendar values, time splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqops.core.windows import (
    CALENDAR_FEATURES,
    calendar_features,
    split_last_origins,
    window_scale,
    windows_from_arrays,
    windows_from_frame,
)

START = pd.Timestamp("2024-01-01 00:00", tz="UTC")  # a Monday


def frame(series: dict[str, np.ndarray], start: pd.Timestamp = START) -> pd.DataFrame:
    parts = [
        pd.DataFrame(
            {"series_id": sid, "timestamp": start + pd.to_timedelta(np.arange(len(v)), "h"), "value": v}
        )
        for sid, v in series.items()
    ]
    return pd.concat(parts, ignore_index=True)


def test_windows_hold_the_values_at_known_positions() -> None:
    df = frame({"a": np.arange(10.0), "b": 100.0 + np.arange(8.0)})
    ws = windows_from_frame(df, 3, 2, scaler="none", calendar=False)
    # a: origins at positions 2..7 (targets up to 9); b: origins 2..5
    assert len(ws) == 6 + 4
    assert ws.series_ids == ("a", "b")
    assert ws.x[0].tolist() == [0.0, 1.0, 2.0] and ws.y[0].tolist() == [3.0, 4.0]
    assert ws.x[5].tolist() == [5.0, 6.0, 7.0] and ws.y[5].tolist() == [8.0, 9.0]
    assert ws.x[6].tolist() == [100.0, 101.0, 102.0] and ws.y[9].tolist() == [106.0, 107.0]
    assert ws.series_idx.tolist() == [0] * 6 + [1] * 4
    assert ws.origin[0] == np.datetime64("2024-01-01T02:00")  # origin = last input timestamp
    expected = np.array(["2024-01-01T03:00", "2024-01-01T04:00"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(ws.target_timestamps()[0], expected)


def test_stride_counts_back_from_the_latest_origin() -> None:
    ws = windows_from_frame(frame({"a": np.arange(10.0)}), 3, 2, stride=4, scaler="none", calendar=False)
    assert [w[-1] for w in ws.x.tolist()] == [3.0, 7.0]  # 7 = the last origin with 2 known targets


def test_gaps_drop_exactly_the_windows_that_touch_them() -> None:
    df = frame({"a": np.arange(10.0)})
    df = df[df["value"] != 4.0]  # one missing hour
    ws = windows_from_frame(df, 3, 2, scaler="none", calendar=False)
    # windows span positions [o-2, o+2]; any that covers position 4 is gone: o = 2..6 -> only o = 7 is left
    assert [w[-1] for w in ws.x.tolist()] == [7.0]


def test_explicit_origins_and_forecast_windows_without_targets() -> None:
    df = frame({"a": np.arange(10.0), "b": np.arange(6.0)})
    last = START + pd.Timedelta(hours=9)
    ws = windows_from_frame(df, 3, 2, origins=[last], scaler="none", calendar=False, require_target=False)
    assert ws.ids() == ["a"]  # b has no value at that origin
    assert ws.x[0].tolist() == [7.0, 8.0, 9.0] and np.isnan(ws.y[0]).all()
    per_series = pd.DataFrame({"series_id": ["b"], "origin": [START + pd.Timedelta(hours=3)]})
    wb = windows_from_frame(df, 3, 2, origins=per_series, scaler="none", calendar=False)
    assert wb.ids() == ["b"] and wb.x[0].tolist() == [1.0, 2.0, 3.0] and wb.y[0].tolist() == [4.0, 5.0]


def test_duplicates_are_refused() -> None:
    df = frame({"a": np.arange(6.0)})
    with pytest.raises(ValueError, match="duplicate"):
        windows_from_frame(pd.concat([df, df.tail(1)]), 3, 1)


@pytest.mark.parametrize("method", ["mean", "standard", "robust", "none"])
def test_scaling_round_trips(method: str) -> None:
    rng = np.random.default_rng(0)
    df = frame({"a": 50 + 10 * rng.standard_normal(60), "b": 3 + rng.standard_normal(60)})
    ws = windows_from_frame(df, 24, 6, scaler=method, calendar=False)
    np.testing.assert_allclose(ws.unscale(ws.scaled_x()), ws.x, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(ws.unscale(ws.scaled_y()), ws.y, rtol=1e-6, atol=1e-5)
    q = np.stack([ws.scaled_y(), ws.scaled_y()], axis=-1)  # [N, H, Q] unscales per window too
    np.testing.assert_allclose(ws.unscale(q)[..., 1], ws.y, rtol=1e-6, atol=1e-5)


def test_window_scale_values() -> None:
    x = np.array([[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]], np.float32)
    assert window_scale(x, "mean").tolist() == [[0.0, 3.0], [0.0, 5.0]]
    std = window_scale(x, "standard")
    assert std[0, 0] == 3.0 and std[0, 1] == pytest.approx(np.sqrt(3.5))
    assert std[1].tolist() == [5.0, 1.0]  # flat window: scale 1, not 0
    assert window_scale(x, "robust")[0].tolist() == [2.5, 2.0]  # median 2.5, IQR 3.75 - 1.75
    assert window_scale(x, "none").tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_calendar_features_at_known_times() -> None:
    ts = np.array(["2024-01-01T00:00", "2024-01-01T06:00", "2024-01-04T12:00"], dtype="datetime64[ns]")
    cal = calendar_features(ts)
    names = list(CALENDAR_FEATURES)
    assert cal.shape == (3, len(names)) and cal.dtype == np.float32
    assert cal[0, names.index("hour_sin")] == 0.0 and cal[0, names.index("hour_cos")] == 1.0
    assert cal[1, names.index("hour_sin")] == pytest.approx(1.0)  # 06:00 = a quarter of the day
    assert cal[0, names.index("dow_cos")] == 1.0  # Monday
    assert cal[2, names.index("dow_sin")] == pytest.approx(np.sin(2 * np.pi * 3 / 7))  # Thursday
    # local wall clock: 05:00 UTC is midnight in New York in winter
    ny = calendar_features(np.array(["2024-01-01T05:00"], dtype="datetime64[ns]"), "America/New_York")
    assert ny[0, names.index("hour_sin")] == 0.0 and ny[0, names.index("hour_cos")] == 1.0


def test_calendar_of_the_windows_is_that_of_the_target_steps() -> None:
    ws = windows_from_frame(frame({"a": np.arange(30.0)}), 4, 3, scaler="none", calendar=True)
    assert ws.calendar.shape == (len(ws), 3, len(CALENDAR_FEATURES))
    np.testing.assert_array_equal(ws.calendar, calendar_features(ws.target_timestamps()))


def test_split_last_origins_keeps_train_targets_before_validation() -> None:
    df = frame({"a": np.arange(20.0), "b": np.arange(15.0)})
    ws = windows_from_frame(df, 3, 2, scaler="none", calendar=False)
    train, val = split_last_origins(ws, 3)
    assert [w[-1] for w in val.x[val.series_idx == 0].tolist()] == [15.0, 16.0, 17.0]
    assert [w[-1] for w in val.x[val.series_idx == 1].tolist()] == [10.0, 11.0, 12.0]
    # train targets of a end at origin + 2 <= 15: last train origin 13
    assert max(w[-1] for w in train.x[train.series_idx == 0].tolist()) == 13.0
    assert max(w[-1] for w in train.x[train.series_idx == 1].tolist()) == 8.0
    assert len(train) == (13 - 2 + 1) + (8 - 2 + 1)


def test_arrays_from_a_feature_store_give_the_same_model_input() -> None:
    df = frame({"a": 10 + np.sin(np.arange(60.0)), "b": 20 + np.cos(np.arange(60.0))})
    ws = windows_from_frame(df, 24, 6, scaler="standard", calendar=True, require_target=False)
    again = windows_from_arrays(
        ws.ids(),
        pd.DatetimeIndex(ws.origin).tz_localize("UTC"),
        [row.tolist() for row in ws.x],
        horizon=6,
        series_ids=ws.series_ids,
        step=pd.Timedelta("1h"),
        scaler="standard",
        calendar=True,
    )
    for name in ("x", "series_idx", "origin", "calendar", "scale"):
        np.testing.assert_array_equal(getattr(again, name), getattr(ws, name))
    assert np.array_equal(again.scaled_x(), ws.scaled_x())


def test_unknown_series_get_index_minus_one() -> None:
    ws = windows_from_frame(frame({"a": np.arange(8.0), "z": np.arange(8.0)}), 3, 1, series_ids=["a"])
    assert set(ws.series_idx.tolist()) == {0, -1}
    re = ws.with_series_index(["z", "a"])
    assert re.ids()[:5] == ["a"] * 5 and set(re.series_idx.tolist()) == {1, -1}
