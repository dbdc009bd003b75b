"""Our LSTM vs NeuralForecast's ``LSTM`` on M4 Hourly: same data, architecture and windows, one run.

Both train a 2 x 128 LSTM on input windows of 168 hours with a direct 48-hour head, on the same
number of training windows (``--steps`` x 128), on this machine's CPU, in one process, one after the
other. Reported per variant: M4 sMAPE / MASE on the official test split, training wall time, windows
per second and its ratio to NeuralForecast's, and the training FLOP rate as a fraction of this
machine's dense fp32 matmul rate (2048^3, measured before and after in the same run, same threads).

Variants of ours (``seqops.training.train.fit``):
  * ``ours_same_recurrence``: ``patch_len=1`` (168 LSTM steps of 1 value, as NeuralForecast),
    batch 128, fp32: the implementation difference alone.
  * ``ours_same_recurrence_fast``: the same network, batch 1024, bf16 autocast.
  * ``ours_default``: the production setting: the window read as 7 daily patches of 24 values
    (7 LSTM steps), batch 1024, bf16; same layers, hidden size and input size.

Needs ``pip install neuralforecast`` in the venv (not a project dependency). Run:
``.venv/bin/python benchmarks/bench_neuralforecast.py [--steps 300] [--threads 1] [--data-dir DIR]``.
Writes ``benchmarks/results/neuralforecast_m4_hourly.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seqops.core.windows import windows_from_frame
from seqops.training.baselines import seasonal_naive
from seqops.training.bench import load_m4_hourly
from seqops.training.config import TrainConfig, make_config
from seqops.training.metrics import score
from seqops.training.model import train_flops_per_window
from seqops.training.train import fit, predict

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SEQOPS_BENCH_DATA_DIR", REPO.parent / "shared" / "data")) / "m4_hourly"
L, H, HIDDEN, LAYERS, NF_BATCH = 168, 48, 128, 2, 128


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """Dense fp32 matmul rate of this machine now (GFLOP/s)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def nf_train_flops_per_window() -> float:
    """NeuralForecast LSTM (recurrent=False): LSTM over 168 steps + MLP(128-128-1) on the last 48 states."""
    lstm = sum(L * 2 * ((1 if i == 0 else HIDDEN) + HIDDEN) * 4 * HIDDEN for i in range(LAYERS))
    decoder = H * 2 * (HIDDEN * HIDDEN + HIDDEN * 1)
    return 3.0 * (lstm + decoder)


def run_neuralforecast(data: Any, steps: int, say: Any) -> dict[str, Any]:
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM
    from pytorch_lightning.callbacks import Callback

    class StepProgress(Callback):
        """A progress line every 50 steps (Lightning's bar stays silent without a terminal)."""

        def __init__(self) -> None:
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            step = trainer.global_step
            if step % 50 == 0 or step == steps:
                rate = step * NF_BATCH / (time.perf_counter() - self.t0)
                say(f"  step {step}/{steps}  {rate:,.0f} win/s  {time.perf_counter() - self.t0:.0f}s")

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    frames = [
        pd.DataFrame({"unique_id": sid, "ds": np.arange(len(v)), "y": v})
        for sid, v in zip(data.ids, data.insample, strict=True)
    ]
    df = pd.concat(frames, ignore_index=True)
    model = LSTM(
        h=H,
        input_size=L,
        encoder_n_layers=LAYERS,
        encoder_hidden_size=HIDDEN,
        decoder_hidden_size=HIDDEN,
        decoder_layers=2,
        max_steps=steps,
        batch_size=32,
        windows_batch_size=NF_BATCH,
        learning_rate=1e-3,
        random_seed=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[StepProgress()],
    )
    nf = NeuralForecast(models=[model], freq=1)
    say(f"NeuralForecast LSTM: {steps} steps x {NF_BATCH} windows")
    t0 = time.perf_counter()
    nf.fit(df=df)
    train_s = time.perf_counter() - t0
    fc = nf.predict()
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    pred = np.stack([fc.loc[fc["unique_id"] == sid, "LSTM"].to_numpy() for sid in data.ids])
    windows = steps * NF_BATCH
    return {
        "train_seconds": train_s,
        "windows": windows,
        "windows_per_s": windows / train_s,
        "train_flops_per_window": nf_train_flops_per_window(),
        "scores": score(data.test, pred, data.insample, 24).as_dict(),
        "params": sum(p.numel() for p in model.parameters()),
    }


def run_ours(name: str, cfg: TrainConfig, data: Any, windows: int, say: Any) -> dict[str, Any]:
    ws = windows_from_frame(data.frame, cfg.input_size, cfg.horizon, scaler=cfg.scaler, calendar=False)
    last = data.frame.groupby("series_id")["timestamp"].max().rename("origin").reset_index()
    fc = windows_from_frame(
        data.frame, cfg.input_size, cfg.horizon, origins=last, scaler=cfg.scaler, calendar=False,
        series_ids=ws.series_ids, require_target=False,
    )  # fmt: skip
    epochs = 5
    cfg = cfg.model_copy(
        update={"epoch_windows": windows // epochs, "max_epochs": epochs, "patience": epochs}
    )
    say(f"{name}: patch_len {cfg.patch_len}, batch {cfg.batch_size}, {cfg.precision}, {windows:,} windows")
    result = fit(ws, None, cfg, on_epoch=lambda s: say(f"  {s.line()}"))
    order = [data.ids.index(s) for s in fc.ids()]
    y, insample = data.test[order], [data.insample[i] for i in order]
    return {
        "train_seconds": result.train_seconds,
        "windows": result.windows_seen,
        "windows_per_s": result.samples_per_s,
        "train_flops_per_window": train_flops_per_window(cfg),
        "scores": score(y, predict(result.model, fc), insample, 24).as_dict(),
        "params": sum(p.numel() for p in result.model.parameters()),
        "config": cfg.model_dump(mode="json"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--steps", type=int, default=300, help="NeuralForecast steps of 128 windows")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "neuralforecast_m4_hourly.json"
    )
    parser.add_argument("--skip", nargs="*", default=[], help="variants to leave out")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads for every run and the matmul probe (1: fastest when others share the cores)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    import neuralforecast

    threads = torch.get_num_threads()
    say(f"torch {torch.__version__}, neuralforecast {neuralforecast.__version__}, {threads} threads")
    data = load_m4_hourly(args.data_dir)
    windows = args.steps * NF_BATCH
    base = dict(
        input_size=L, horizon=H, hidden_size=HIDDEN, num_layers=LAYERS, lr=1e-3, calendar=False,
        num_threads=args.threads,
    )  # fmt: skip
    variants = {
        "ours_same_recurrence": {**base, "patch_len": 1, "batch_size": 128, "precision": "fp32"},
        "ours_same_recurrence_fast": {
            **base,
            "patch_len": 1,
            "batch_size": 1024,
            "precision": "bf16",
            "lr": 2e-3,
        },
        "ours_default": {**base, "lr": 2e-3},  # the m4_hourly profile: patch_len 24, batch 1024, bf16
    }
    gflops_before = matmul_gflops()
    say(f"matmul 2048^3 fp32: {gflops_before:.1f} GFLOP/s")
    results: dict[str, Any] = {}
    if "neuralforecast" not in args.skip:
        results["neuralforecast"] = run_neuralforecast(data, args.steps, say)
        say(f"  neuralforecast: {results['neuralforecast']['windows_per_s']:,.0f} win/s")
    for name, overrides in variants.items():
        if name not in args.skip:
            results[name] = run_ours(name, make_config("m4_hourly", **overrides), data, windows, say)
    gflops_after = matmul_gflops()
    say(f"matmul 2048^3 fp32: {gflops_after:.1f} GFLOP/s")
    matmul = (gflops_before + gflops_after) / 2

    sn = score(data.test, seasonal_naive(data.insample, H, 24), data.insample, 24)
    nf_rate = results.get("neuralforecast", {}).get("windows_per_s")
    rows = []
    for name, r in results.items():
        r["gflops"] = r["windows_per_s"] * r["train_flops_per_window"] / 1e9
        r["fraction_of_matmul"] = r["gflops"] / matmul
        r["throughput_vs_neuralforecast"] = r["windows_per_s"] / nf_rate if nf_rate else None
        rows.append(
            (name, r["scores"]["smape"], r["scores"]["mase"], r["train_seconds"], r["windows_per_s"],
             r["throughput_vs_neuralforecast"], r["gflops"], r["fraction_of_matmul"])
        )  # fmt: skip
    print(
        f"{'variant':28s} {'sMAPE':>7s} {'MASE':>6s} {'train s':>8s} {'win/s':>8s} {'x NF':>6s} "
        f"{'GFLOP/s':>8s} {'%mm':>6s}"
    )
    for name, sm, ms, ts, ws_, ratio, gf, frac in rows:
        ratio_s = f"{ratio:6.2f}" if ratio else "     -"
        print(f"{name:28s} {sm:7.3f} {ms:6.3f} {ts:8.1f} {ws_:8,.0f} {ratio_s} {gf:8.1f} {100 * frac:5.1f}%")
    print(f"{'seasonal naive':28s} {sn.smape:7.3f} {sn.mase:6.3f}")
    report = {
        "benchmark": "neuralforecast_lstm_vs_ours_m4_hourly",
        "architecture": {"input_size": L, "horizon": H, "hidden_size": HIDDEN, "num_layers": LAYERS},
        "windows_per_run": windows,
        "matmul_gflops": {"before": gflops_before, "after": gflops_after},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "results": results,
        "seasonal_naive": sn.as_dict(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    say(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
