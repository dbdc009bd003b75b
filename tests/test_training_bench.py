"""The public benchmark functions end to end on a few epochs (the published runs train to their rule)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seqops.training.bench import (
    M4_VARIANTS,
    bench_etth1,
    bench_m4_hourly,
    load_etth1,
    load_m4_hourly,
)
from seqops.training.config import make_config

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_etth1_split_and_scaling_follow_informer() -> None:
    frame, mean, std = load_etth1(DATA / "ETTh1")
    assert len(frame) == 17_420
    train = frame["value"].iloc[:8640]
    assert abs(train.mean()) < 1e-12 and abs(train.std(ddof=0) - 1.0) < 1e-12
    assert round(mean, 4) == 17.1283 and round(std, 4) == 9.1765  # OT train mean/std (ddof 0)


def test_the_m4_validation_split_hides_the_last_48_training_points() -> None:
    test, val = load_m4_hourly(DATA / "m4_hourly"), load_m4_hourly(DATA / "m4_hourly", "validation")
    assert val.ids == test.ids and val.test.shape == (414, 48)
    for full, short, target in zip(test.insample, val.insample, val.test, strict=True):
        assert len(short) == len(full) - 48
        np.testing.assert_array_equal(np.r_[short, target], full)
    # the frame the model and the peers train on stops where the validation target starts
    assert val.frame.groupby("series_id").size().sum() == sum(len(s) for s in val.insample)


def test_the_m4_profile_is_the_variant_chosen_on_validation() -> None:
    """The committed selection (``make bench``) picked a variant; the profile the test run uses is it."""
    selection = json.loads((RESULTS / "m4_hourly_selection.json").read_text())
    assert selection["split"] == "validation"
    assert set(selection["variants"]) == set(M4_VARIANTS)
    scores = {name: v["scores"]["owa"] for name, v in selection["variants"].items()}
    assert selection["pick"] == min(scores, key=scores.__getitem__)
    assert M4_VARIANTS[selection["pick"]] == {}, "the m4_hourly profile must carry the validation pick"


@pytest.mark.slow
def test_bench_m4_hourly_seeds_peers_and_provenance(tmp_path: Path) -> None:
    out = tmp_path / "m4.json"
    lines: list[str] = []
    config = make_config("m4_hourly", max_epochs=1, epoch_windows=3000)
    report = bench_m4_hourly(
        DATA / "m4_hourly", seeds=2, peers=("lgbm",), config=config, json_out=out, progress=lines.append
    )
    scores = report["scores"]
    sn = scores["seasonal_naive"]
    assert (round(sn["smape"], 3), round(sn["mase"], 3)) == (13.912, 1.193)
    n2 = scores["naive2"]
    assert (round(n2["smape"], 3), round(n2["mase"], 3), n2["owa"]) == (18.383, 2.395, 1.0)
    assert len(scores["lstm_seeds"]) == 2 and scores["lstm_std"]["smape"] > 0
    assert scores["lstm_mean"]["smape"] == pytest.approx(np.mean([s["smape"] for s in scores["lstm_seeds"]]))
    assert [m["seed"] for m in report["members"]] == [0, 1]
    ratio = report["ratios_of_lstm_mean"]["lgbm"]["mase"]
    assert ratio == pytest.approx(scores["lstm_mean"]["mase"] / scores["lgbm"]["mase"])
    assert report["peers"]["lgbm"]["cpu_seconds"] > 0
    assert report["provenance"]["git_commit"] and report["provenance"]["machine"]["cpus"]
    assert any("epoch" in line for line in lines)
    assert json.loads(out.read_text())["split"] == "test"


@pytest.mark.slow
def test_bench_etth1_reports_naive_seeds_and_the_papers(tmp_path: Path) -> None:
    report = bench_etth1(
        DATA / "ETTh1", (24, 96), seeds=2, config=make_config("etth1", max_epochs=2), progress=lambda _: None
    )
    h24, h96 = report["horizons"]["24"], report["horizons"]["96"]
    assert h24["test_windows"] == 2880 - 24 + 1
    assert round(h24["naive"]["mse"], 3) == 0.034  # last-value naive on Informer's test windows
    assert h24["lstm_mean"]["mse"] < h24["seasonal_naive"]["mse"]
    assert (
        set(h96["papers"]) >= {"dlinear_paper", "patchtst42_paper"} and "informer_paper" not in h96["papers"]
    )
    assert len(h96["lstm_seeds_validation"]) == 2
