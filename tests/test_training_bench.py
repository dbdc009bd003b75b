"""The public benchmark functions end to end, on a short budget (the real runs take 15 minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqops.training.bench import bench_etth1, bench_m4_hourly, load_etth1

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_etth1_split_and_scaling_follow_informer() -> None:
    frame, mean, std = load_etth1(DATA / "ETTh1")
    assert len(frame) == 17_420
    train = frame["value"].iloc[:8640]
    assert abs(train.mean()) < 1e-12 and abs(train.std(ddof=0) - 1.0) < 1e-12
    assert round(mean, 4) == 17.1283 and round(std, 4) == 9.1765  # OT train mean/std (ddof 0)


@pytest.mark.slow
def test_bench_m4_hourly_short_budget(tmp_path: Path) -> None:
    lines: list[str] = []
    out = tmp_path / "m4.json"
    report = bench_m4_hourly(
        DATA / "m4_hourly", time_budget_s=60, json_out=out, progress=lines.append, threads=1
    )
    sn = report["scores"]["seasonal_naive"]
    assert (round(sn["smape"], 3), round(sn["mase"], 3)) == (13.912, 1.193)
    n2 = report["scores"]["naive2"]
    assert (round(n2["smape"], 3), round(n2["mase"], 3), n2["owa"]) == (18.383, 2.395, 1.0)
    assert report["scores"]["lstm"]["n_series"] == 414
    assert report["wall_seconds"] < 60 + 30  # the budget includes loading and scoring (epoch granularity)
    assert any(line.lstrip().startswith("epoch") for line in lines)
    assert json.loads(out.read_text())["benchmark"] == "m4_hourly"


@pytest.mark.slow
def test_bench_etth1_short_budget_beats_seasonal_naive(tmp_path: Path) -> None:
    report = bench_etth1(
        DATA / "ETTh1", (24,), time_budget_s=90, members=1, progress=lambda _: None, threads=1
    )
    h24 = report["horizons"]["24"]
    assert h24["test_windows"] == 2880 - 24 + 1
    assert h24["lstm"]["mse"] < h24["seasonal_naive"]["mse"]
