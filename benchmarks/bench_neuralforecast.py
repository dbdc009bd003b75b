"""Our LSTM vs NeuralForecast's ``LSTM`` on M4 Hourly: same data, architecture and windows, one run.

Both train a 2 x 128 LSTM on input windows of 168 hours with a direct 48-hour head, on the same
number of training windows (``--steps`` x 128), on this machine's CPU, in one process, one after the
other. Reported per variant: M4 sMAPE / MASE on the official test split; two wall times, each with
its ratio to NeuralForecast's measured the same way; and the training FLOP rate as a fraction of
this machine's dense matmul rate in the variant's own precision.

Timings (both sides timed both ways):
  * end to end: from the raw long frame to a fitted model. Ours: cutting the training windows
    out of the frame + building the model + training (``windows_from_frame`` + ``fit``).
    NeuralForecast: ``LSTM(...)`` + ``NeuralForecast(...)`` + ``.fit(df)``, its dataset, data
    module and Lightning trainer set-up included. Building the forecast windows and predicting are
    outside on both sides; so is turning the M4 files into a frame (done once, before any run).
  * training steps only: ours, the sum of the epochs' batch loops inside ``fit`` (the optimisation
    steps; no set-up, no per-epoch bookkeeping); NeuralForecast, from Lightning's
    ``on_train_batch_start`` of its first step to ``on_train_batch_end`` of its last (its per-step
    window cutting, sampling and scaling, forward, backward and Adam step, and the fetches of the
    later batches in between).
  ``x NF`` is a throughput ratio (ours / NeuralForecast's windows per second) of like against like:
  end to end against end to end, steps against steps. GFLOP/s come from the steps-only rate.

FLOP rates: dense training FLOPs per window (3 x the forward matmuls) x windows/s, divided by the
2048^3 matmul rate of the row's own precision (fp32 rows by fp32 tensors, bf16 rows by bf16
tensors), both measured before and after the runs in the same process with the same threads.

Variants:
  * ``neuralforecast_default``: NeuralForecast's ``LSTM`` as it comes (robust median/MAD scaler,
    training windows with partially missing targets allowed), batch 128 windows, fp32.
  * ``ours_same_recurrence``: ``patch_len=1`` (168 LSTM steps of 1 value, as NeuralForecast),
    batch 128, fp32, our production head (seasonal-naive skip, mean |x| window scaler).
  * ``ours_same_recurrence_fast``: the same network, batch 1024, bf16 autocast.
  * ``ours_default``: the production setting: the window read as 7 daily patches of 24 values
    (7 LSTM steps), batch 1024, bf16; same layers, hidden size and input size.
  * ``neuralforecast_matched`` / ``ours_matched``: the accuracy comparison of the same setup. Both
    z-score each window with the mean and (population) std of its 168 inputs (NF
    ``scaler_type="standard"``, ours ``scaler="standard"``), train only on complete windows (NF
    ``training_data_availability_threshold=1.0``, no start padding; ours always), with plain MAE on
    the scaled targets, Adam at a constant 1e-3, global grad-norm clip 1.0, 128 windows a step,
    fp32, and the final weights; ours without the seasonal-naive skip (``naive_skip=False``), 168
    steps of 1 value. What still differs: the heads (NF: an MLP on each of the last 48 hidden
    states; ours: a context layer and a per-step MLP), the window sampling (NF: 32 series a step,
    then 128 of their windows; ours: uniform over all windows, without replacement), the
    initialisation and seeds, and the scalers' epsilon (NF adds 1e-6 to every std; ours replaces
    a std below 1e-8 by 1).

Needs the bench extra (`make bench-neuralforecast` installs requirements/bench.txt). Run:
``.venv/bin/python benchmarks/bench_neuralforecast.py [--steps 500] [--threads 1] [--data-dir DIR]``.
Writes ``benchmarks/results/neuralforecast.json`` (``--out``), with the command, git commit,
machine and threads under ``provenance`` and the wall / CPU seconds.
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
from seqops.training.bench import load_m4_hourly, provenance
from seqops.training.config import TrainConfig, make_config
from seqops.training.metrics import score
from seqops.training.model import train_flops_per_window
from seqops.training.peers import cpu_time
from seqops.training.train import fit, predict

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SEQOPS_BENCH_DATA_DIR", REPO.parent / "shared" / "data")) / "m4_hourly"
L, H, HIDDEN, LAYERS, NF_BATCH = 168, 48, 128, 2, 128
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Each of our variants' throughput is compared with the NeuralForecast run of the same setup.
REFERENCE = {
    "ours_same_recurrence": "neuralforecast_default",
    "ours_same_recurrence_fast": "neuralforecast_default",
    "ours_default": "neuralforecast_default",
    "ours_matched": "neuralforecast_matched",
}


def matmul_gflops(precision: str, n: int = 2048, reps: int = 5) -> float:
    """Dense n^3 matmul rate of this machine now (GFLOP/s), on tensors of ``precision``.

    bf16 uses bf16 tensors (the kernel autocast dispatches to, without the casts).
    """
    dtype = PRECISIONS[precision]
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
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


def run_neuralforecast(name: str, data: Any, steps: int, say: Any, *, matched: bool) -> dict[str, Any]:
    """One NeuralForecast LSTM run; ``matched``: the setup of ``ours_matched`` (module docstring)."""
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM
    from pytorch_lightning.callbacks import Callback

    class StepClock(Callback):
        """Times the optimisation steps and prints a progress line every 50 steps.

        ``first_start``: the first ``on_train_batch_start`` (the first batch is already fetched);
        ``last_end``: the latest ``on_train_batch_end`` (after the optimizer step). Their difference
        spans every step, and none of the data module / trainer set-up before or teardown after.
        """

        def __init__(self) -> None:
            self.first_start: float | None = None
            self.last_end: float | None = None
            self.batches = 0

        def __deepcopy__(self, memo: dict[int, Any]) -> StepClock:
            # NeuralForecast.fit trains deep copies of its models (trainer kwargs included): keep
            # this one instance, so that the clock read here is the one the trainer ran.
            return self

        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            if self.first_start is None:
                self.first_start = time.perf_counter()

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            self.last_end = time.perf_counter()
            self.batches += 1
            step = trainer.global_step
            if step % 50 == 0 or step == steps:
                elapsed = self.last_end - (self.first_start or self.last_end)
                rate = step * NF_BATCH / elapsed if elapsed > 0 else 0.0
                say(f"  step {step}/{steps}  {rate:,.0f} win/s  {elapsed:.0f}s")

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    frames = [
        pd.DataFrame({"unique_id": sid, "ds": np.arange(len(v)), "y": v})
        for sid, v in zip(data.ids, data.insample, strict=True)
    ]
    df = pd.concat(frames, ignore_index=True)
    setup: dict[str, Any] = (
        {
            "scaler_type": "standard",  # mean / population std of the input window = ours "standard"
            "training_data_availability_threshold": 1.0,  # all 168 inputs and 48 targets present
            "start_padding_enabled": False,
            "gradient_clip_val": 1.0,  # Lightning's global-norm clip, as our grad_clip=1.0
        }
        if matched
        else {}  # its defaults: scaler_type="robust", threshold 0.0 (partial targets), no clipping
    )
    clock = StepClock()
    say(f"{name}: NeuralForecast LSTM, {steps} steps x {NF_BATCH} windows, {setup or 'defaults'}")
    t0 = time.perf_counter()
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
        callbacks=[clock],
        **setup,
    )
    nf = NeuralForecast(models=[model], freq=1)
    nf.fit(df=df)
    end_to_end_s = time.perf_counter() - t0
    if clock.first_start is None or clock.last_end is None:
        raise RuntimeError("NeuralForecast ran no training step")
    steps_s = clock.last_end - clock.first_start
    fc = nf.predict()
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    pred = np.stack([fc.loc[fc["unique_id"] == sid, "LSTM"].to_numpy() for sid in data.ids])
    windows = clock.batches * NF_BATCH
    return {
        "precision": "fp32",
        "setup": setup or "neuralforecast defaults",
        "end_to_end_seconds": end_to_end_s,
        "steps_seconds": steps_s,
        "windows": windows,
        "windows_per_s_end_to_end": windows / end_to_end_s,
        "windows_per_s_steps": windows / steps_s,
        "train_flops_per_window": nf_train_flops_per_window(),
        "scores": score(data.test, pred, data.insample, 24).as_dict(),
        "params": sum(p.numel() for p in model.parameters()),
    }


def run_ours(
    name: str, cfg: TrainConfig, data: Any, windows: int, say: Any, *, epochs: int = 5
) -> dict[str, Any]:
    cfg = cfg.model_copy(
        update={"epoch_windows": windows // epochs, "max_epochs": epochs, "patience": epochs}
    )
    say(f"{name}: patch_len {cfg.patch_len}, batch {cfg.batch_size}, {cfg.precision}, {windows:,} windows")
    t0 = time.perf_counter()
    ws = windows_from_frame(data.frame, cfg.input_size, cfg.horizon, scaler=cfg.scaler, calendar=False)
    result = fit(ws, None, cfg, on_epoch=lambda s: say(f"  {s.line()}"))
    end_to_end_s = time.perf_counter() - t0
    # The batch loops alone: each epoch's windows / its rate = the time of its optimisation steps.
    steps_s = sum(h.windows / h.samples_per_s for h in result.history if h.samples_per_s > 0)
    last = data.frame.groupby("series_id")["timestamp"].max().rename("origin").reset_index()
    fc = windows_from_frame(
        data.frame, cfg.input_size, cfg.horizon, origins=last, scaler=cfg.scaler, calendar=False,
        series_ids=ws.series_ids, require_target=False,
    )  # fmt: skip
    order = [data.ids.index(s) for s in fc.ids()]
    y, insample = data.test[order], [data.insample[i] for i in order]
    return {
        "precision": cfg.precision,
        "end_to_end_seconds": end_to_end_s,
        "steps_seconds": steps_s,
        "fit_loop_seconds": result.train_seconds,  # the steps + per-epoch bookkeeping
        "windows": result.windows_seen,
        "windows_per_s_end_to_end": result.windows_seen / end_to_end_s,
        "windows_per_s_steps": result.windows_seen / steps_s,
        "train_flops_per_window": train_flops_per_window(result.config),
        "scores": score(y, predict(result.model, fc), insample, 24).as_dict(),
        "params": sum(p.numel() for p in result.model.parameters()),
        "config": result.config.model_dump(mode="json"),  # as trained (fit may settle fields)
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--steps", type=int, default=500, help="NeuralForecast steps of 128 windows")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "neuralforecast.json")
    parser.add_argument("--skip", nargs="*", default=[], help="variants to leave out")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads for every run and the matmul probe (1: fastest when others share the cores)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    wall0, cpu0 = time.perf_counter(), cpu_time()
    info = provenance(threads=args.threads)

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    import neuralforecast

    threads = torch.get_num_threads()
    info["neuralforecast"] = neuralforecast.__version__
    say(f"torch {torch.__version__}, neuralforecast {neuralforecast.__version__}, {threads} threads")
    data = load_m4_hourly(args.data_dir)
    windows = args.steps * NF_BATCH
    base = dict(
        input_size=L, horizon=H, hidden_size=HIDDEN, num_layers=LAYERS, lr=1e-3, calendar=False,
        num_threads=args.threads,
    )  # fmt: skip
    # name -> (config overrides, epochs). ours_matched trains one epoch: its LR stays constant (the
    # plateau scheduler only acts between epochs) and the model returned is the final one, as
    # NeuralForecast's, not the best of several epochs.
    variants: dict[str, tuple[dict[str, Any], int]] = {
        "ours_same_recurrence": ({**base, "patch_len": 1, "batch_size": 128, "precision": "fp32"}, 5),
        "ours_same_recurrence_fast": (
            {**base, "patch_len": 1, "batch_size": 1024, "precision": "bf16", "lr": 2e-3},
            5,
        ),
        # the m4_hourly profile: patch_len 24, batch 1024, bf16
        "ours_default": ({**base, "lr": 2e-3}, 5),
        "ours_matched": (
            {
                **base,
                "patch_len": 1,
                "batch_size": 128,
                "precision": "fp32",
                "scaler": "standard",
                "naive_skip": False,
                "grad_clip": 1.0,
            },
            1,
        ),
    }
    matmul_before = {p: matmul_gflops(p) for p in PRECISIONS}
    say("matmul 2048^3: " + ", ".join(f"{p} {g:.1f}" for p, g in matmul_before.items()) + " GFLOP/s")
    results: dict[str, Any] = {}
    for name, matched in (("neuralforecast_default", False), ("neuralforecast_matched", True)):
        if name not in args.skip:
            results[name] = run_neuralforecast(name, data, args.steps, say, matched=matched)
            say(f"  {name}: {results[name]['windows_per_s_steps']:,.0f} win/s (steps)")
    for name, (overrides, epochs) in variants.items():
        if name not in args.skip:
            cfg = make_config("m4_hourly", **overrides)
            results[name] = run_ours(name, cfg, data, windows, say, epochs=epochs)
    matmul_after = {p: matmul_gflops(p) for p in PRECISIONS}
    say("matmul 2048^3: " + ", ".join(f"{p} {g:.1f}" for p, g in matmul_after.items()) + " GFLOP/s")
    matmul = {p: (matmul_before[p] + matmul_after[p]) / 2 for p in PRECISIONS}

    sn = score(data.test, seasonal_naive(data.insample, H, 24), data.insample, 24)
    for name, r in results.items():
        r["gflops"] = r["windows_per_s_steps"] * r["train_flops_per_window"] / 1e9
        r["fraction_of_matmul"] = r["gflops"] / matmul[r["precision"]]  # its own precision's rate
        ref = results.get(REFERENCE.get(name, name))
        r["vs_neuralforecast"] = (
            {
                "reference": REFERENCE.get(name, name),
                "end_to_end": r["windows_per_s_end_to_end"] / ref["windows_per_s_end_to_end"],
                "steps": r["windows_per_s_steps"] / ref["windows_per_s_steps"],
            }
            if ref is not None
            else None
        )
    print(
        f"{'variant':26s} {'prec':>4s} {'sMAPE':>7s} {'MASE':>6s} {'e2e s':>7s} {'steps s':>7s} "
        f"{'win/s':>6s} {'xNF e2e':>7s} {'xNF st':>6s} {'GFLOP/s':>7s} {'%mm':>6s}"
    )
    for name, r in results.items():
        vs = r["vs_neuralforecast"]
        e2e = f"{vs['end_to_end']:7.2f}" if vs else "      -"
        st = f"{vs['steps']:6.2f}" if vs else "     -"
        print(
            f"{name:26s} {r['precision']:>4s} {r['scores']['smape']:7.3f} {r['scores']['mase']:6.3f} "
            f"{r['end_to_end_seconds']:7.1f} {r['steps_seconds']:7.1f} {r['windows_per_s_steps']:6,.0f} "
            f"{e2e} {st} {r['gflops']:7.1f} {100 * r['fraction_of_matmul']:5.1f}%"
        )
    print(f"{'seasonal naive':26s} {'':4s} {sn.smape:7.3f} {sn.mase:6.3f}")
    print(
        "win/s, GFLOP/s: training steps only; xNF: ours / NeuralForecast windows/s, end to end and steps "
        "only (ours_matched vs neuralforecast_matched, the others vs neuralforecast_default); %mm: of "
        "the 2048^3 matmul rate in the row's precision "
        + ", ".join(f"{p} {g:.1f}" for p, g in matmul.items())
        + " GFLOP/s"
    )
    report = {
        "benchmark": "neuralforecast_lstm_vs_ours_m4_hourly",
        "architecture": {"input_size": L, "horizon": H, "hidden_size": HIDDEN, "num_layers": LAYERS},
        "windows_per_run": windows,
        "steps": args.steps,
        "timing": {
            "end_to_end": "raw long frame -> fitted model: ours windows_from_frame + fit (model built "
            "inside); NF LSTM(...) + NeuralForecast(...) + fit(df) with its dataset and trainer set-up",
            "steps": "ours: sum of the epochs' batch loops in fit; NF: first on_train_batch_start to "
            "last on_train_batch_end (Lightning callback)",
        },
        "matmul_gflops": {p: {"before": matmul_before[p], "after": matmul_after[p]} for p in PRECISIONS},
        "reference_of": REFERENCE,
        "results": results,
        "seasonal_naive": sn.as_dict(),
        "wall_seconds": round(time.perf_counter() - wall0, 1),
        "cpu_seconds": round(cpu_time() - cpu0, 1),
        "provenance": info,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
