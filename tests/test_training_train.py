"""The forecaster and its training loop: shapes, a known-output model, learning, kill-and-resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from seqops.core.windows import split_last_origins, windows_from_frame
from seqops.training.baselines import seasonal_naive
from seqops.training.config import make_config
from seqops.training.model import LSTMForecaster, train_flops_per_window
from seqops.training.train import CHECKPOINT_NAME, fit, predict

SYNTH = """
import numpy as np, pandas as pd
def synthetic_frame(n_series=4, days=20, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(24 * days)
    parts = []
    for i in range(n_series):
        level = 50.0 + 20.0 * i
        v = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24 + i)) + rng.normal(0, 1.0, len(t))
        stamps = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(t, "h")
        parts.append(pd.DataFrame({"series_id": f"s{i}", "timestamp": stamps, "value": v}))
    return pd.concat(parts, ignore_index=True)
"""
namespace: dict = {}
exec(SYNTH, namespace)
synthetic_frame = namespace["synthetic_frame"]

SMALL = dict(
    input_size=48, horizon=12, patch_len=12, hidden_size=16, num_layers=1, decoder_size=16,
    batch_size=64, val_origins=6, calendar=True, num_threads=1,
)  # fmt: skip


def small_windows(**overrides):
    cfg = make_config(**{**SMALL, **overrides})
    ws = windows_from_frame(
        synthetic_frame(), cfg.input_size, cfg.horizon, scaler=cfg.scaler, calendar=cfg.calendar
    )
    return cfg, ws


def test_forward_shapes_and_flops() -> None:
    model = LSTMForecaster(
        input_size=48, horizon=12, patch_len=12, hidden_size=8, n_series=3, embedding_dim=4, n_calendar=6,
        n_outputs=3,
    )  # fmt: skip
    out = model(torch.randn(5, 48), torch.tensor([0, 1, 2, -1, 0]), torch.randn(5, 12, 6))
    assert out.shape == (5, 12, 3)
    cfg = make_config(input_size=168, patch_len=1, hidden_size=128, num_layers=2, naive_skip=False)
    per_step = 2 * (1 + 128) * 512 + 2 * (128 + 128) * 512  # two layers' gate matmuls
    assert train_flops_per_window(cfg) > 3 * 168 * per_step


def test_a_zero_correction_gives_the_seasonal_naive_exactly() -> None:
    cfg, ws = small_windows(naive_skip=True, season=24)
    model = LSTMForecaster.from_config(cfg, n_series=len(ws.series_ids), n_calendar=ws.n_calendar)
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.zero_()
    np.testing.assert_allclose(predict(model, ws), seasonal_naive(ws.x, cfg.horizon, 24), rtol=1e-5)


def test_overfits_one_batch() -> None:
    cfg, ws = small_windows(
        lr=1e-2, max_epochs=300, patience=300, lr_patience=300, batch_size=32, hidden_size=64,
        decoder_size=64, naive_skip=False, grad_clip=None,
    )  # fmt: skip
    batch = ws.subset(np.arange(32))
    result = fit(batch, batch, cfg)
    first, last = result.history[0].train_loss, min(h.train_loss for h in result.history)
    assert last < 0.1 * first, (first, last)


def test_fit_early_stops_and_returns_the_best_weights(tmp_path: Path) -> None:
    cfg, ws = small_windows(max_epochs=40, patience=2, lr=5e-3)
    train, val = split_last_origins(ws, cfg.val_origins)
    seen = []
    result = fit(train, val, cfg, on_epoch=seen.append)
    assert [s.epoch for s in seen] == [h.epoch for h in result.history]
    assert result.best_val_loss == min(h.val_loss for h in result.history)
    if result.stop_reason == "patience":
        assert len(result.history) - result.best_epoch == cfg.patience
    pred = predict(result.model, val)
    mae = np.abs(pred - val.y).mean()
    naive_mae = np.abs(seasonal_naive(val.x, cfg.horizon, 24) - val.y).mean()
    assert mae < naive_mae  # noise sd 1: beats the seasonal naive (which carries two noise terms)


CHILD = """
import sys, time
from pathlib import Path
from seqops.training.config import make_config
from seqops.training.train import fit
from seqops.core.windows import split_last_origins, windows_from_frame
{synth}
cfg = make_config(**{{**{small}, "max_epochs": 6, "patience": 6, "dropout": 0.2, "num_layers": 2}})
ws = windows_from_frame(synthetic_frame(), cfg.input_size, cfg.horizon, scaler=cfg.scaler, calendar=True)
train, val = split_last_origins(ws, cfg.val_origins)
def stall(stats):
    print("epoch", stats.epoch, flush=True)
    if stats.epoch == 3:
        time.sleep(600)  # the parent kills us here, after epoch 3's checkpoint
fit(train, val, cfg, checkpoint_dir=Path(sys.argv[1]), on_epoch=stall)
"""


def test_a_killed_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    cfg, ws = small_windows(max_epochs=6, patience=6, dropout=0.2, num_layers=2)
    train, val = split_last_origins(ws, cfg.val_origins)
    straight = fit(train, val, cfg, checkpoint_dir=tmp_path / "straight")

    ckpt_dir = tmp_path / "killed"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(synth=SYNTH, small=repr(SMALL)))
    child = subprocess.Popen([sys.executable, str(script), str(ckpt_dir)], stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:  # type: ignore[union-attr]
            if line.strip() == "epoch 3":
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    state = torch.load(ckpt_dir / CHECKPOINT_NAME, weights_only=False)
    assert state["epoch"] == 3 and not state["stopped"]

    resumed = fit(train, val, cfg, checkpoint_dir=ckpt_dir)
    assert [h.epoch for h in resumed.history] == list(range(1, 7))
    assert [h.val_loss for h in resumed.history] == [h.val_loss for h in straight.history]
    assert resumed.best_epoch == straight.best_epoch
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    np.testing.assert_array_equal(predict(resumed.model, val), predict(straight.model, val))
    # a finished run is not trained again
    t0 = time.perf_counter()
    again = fit(train, val, cfg, checkpoint_dir=ckpt_dir)
    assert time.perf_counter() - t0 < 5 and len(again.history) == 6


def test_a_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    cfg, ws = small_windows(max_epochs=1)
    train, val = split_last_origins(ws, cfg.val_origins)
    fit(train, val, cfg, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="different config"):
        fit(train, val, cfg.model_copy(update={"hidden_size": 8}), checkpoint_dir=tmp_path)


def test_quantile_model_outputs_ordered_levels_after_training() -> None:
    cfg, ws = small_windows(quantiles=(0.1, 0.5, 0.9), max_epochs=8, lr=5e-3)
    train, val = split_last_origins(ws, cfg.val_origins)
    result = fit(train, val, cfg)
    pred = predict(result.model, val)
    assert pred.shape == (len(val), cfg.horizon, 3)
    assert (pred[..., 0] <= pred[..., 2]).mean() > 0.95


def test_thread_setting_is_restored() -> None:
    before = torch.get_num_threads()
    cfg, ws = small_windows(max_epochs=1, num_threads=1)
    fit(ws, None, cfg)
    assert torch.get_num_threads() == before


def test_windows_must_match_the_config() -> None:
    cfg, ws = small_windows()
    with pytest.raises(ValueError, match="config says"):
        fit(ws, None, cfg.model_copy(update={"horizon": 6}))
