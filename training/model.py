"""The forecaster: one global LSTM over many series, all H steps at once.

Reads scaled windows (see :class:`seqops.core.windows.WindowSet`; scaling happens outside the module so
training, serving and Feast share one definition of it) and returns scaled forecasts.
"""

from __future__ import annotations

import torch
from torch import nn

from seqops.training.config import TrainConfig


class LSTMForecaster(nn.Module):
    """Global LSTM encoder + per-horizon-step MLP decoder (direct multi-horizon, MQ-RNN style).

    The input window of L values is read as S = L / patch_len steps of patch_len values each (one
    day per step with patch_len = 24; patch_len = 1 is the classic one-value-per-step recurrence).
    The last hidden state of the top layer, joined with the optional series embedding, is mapped
    to one context vector per horizon step; each context, joined with that step's calendar
    features, goes through a small shared MLP to Q outputs (1 point forecast or Q quantiles). With
    ``naive_skip`` that output is a correction added to a naive forecast: the window's last season
    repeated (seasonal naive) or, with period 1, its last value (per-window scaling commutes with
    both).

    Hyperparameters:
        input_size: L, input window length.
        horizon: H, steps forecast at once.
        patch_len: input values per LSTM step (divides L).
        hidden_size: LSTM units per layer.
        num_layers: stacked LSTM layers.
        dropout: between LSTM layers and inside the decoder.
        n_series: size of the series index (embedding rows); index -1 = unknown series.
        embedding_dim: series embedding size; 0 = no embedding.
        n_calendar: C, calendar features per target step; 0 = none.
        decoder_size: width of the decoder MLP and of each per-step context.
        n_outputs: Q, values per horizon step.
        naive_skip: add the decoder's output to the naive forecast (a residual on it).
        season: the naive skip's period: m for seasonal naive, 1 for the last value.
    """

    def __init__(
        self,
        *,
        input_size: int,
        horizon: int,
        patch_len: int = 24,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.0,
        n_series: int = 0,
        embedding_dim: int = 0,
        n_calendar: int = 0,
        decoder_size: int = 64,
        n_outputs: int = 1,
        naive_skip: bool = False,
        season: int = 24,
    ) -> None:
        super().__init__()
        if input_size % patch_len:
            raise ValueError("patch_len must divide input_size")
        self.input_size, self.horizon, self.patch_len = input_size, horizon, patch_len
        self.n_series, self.embedding_dim, self.n_calendar = n_series, embedding_dim, n_calendar
        self.decoder_size, self.n_outputs = decoder_size, n_outputs
        self.naive_skip, self.season = naive_skip, season
        if naive_skip and season > input_size:
            raise ValueError("season must not exceed input_size")
        # Positions of the seasonal naive forecast in the window: the last season repeated.
        self.register_buffer(
            "naive_index", input_size - season + torch.arange(horizon) % season, persistent=False
        )
        # Row n_series stays zero: the embedding of a series the model never saw (index -1).
        self.embedding = (
            nn.Embedding(n_series + 1, embedding_dim, padding_idx=n_series) if embedding_dim > 0 else None
        )
        self.lstm = nn.LSTM(
            input_size=patch_len + embedding_dim,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.context = nn.Linear(hidden_size + embedding_dim, horizon * decoder_size)
        self.decoder = nn.Sequential(
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(decoder_size + n_calendar, decoder_size),
            nn.ReLU(),
            nn.Linear(decoder_size, n_outputs),
        )

    @classmethod
    def from_config(cls, config: TrainConfig, *, n_series: int, n_calendar: int) -> LSTMForecaster:
        """Build the module a :class:`TrainConfig` describes."""
        return cls(
            input_size=config.input_size,
            horizon=config.horizon,
            patch_len=config.patch_len,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout,
            n_series=n_series,
            embedding_dim=config.embedding_dim,
            n_calendar=n_calendar if config.calendar else 0,
            decoder_size=config.decoder_size,
            n_outputs=config.n_outputs,
            naive_skip=config.naive_skip,
            season=config.skip_steps,
        )

    def forward(
        self,
        x: torch.Tensor,
        series_idx: torch.Tensor | None = None,
        calendar: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Forecast H steps from scaled windows.

        Args:
            x: [B, L] scaled input windows.
            series_idx: [B] int64 series positions (-1 = unknown); needed when embedding_dim > 0.
            calendar: [B, H, C] calendar features of the target steps; needed when n_calendar > 0.

        Returns:
            [B, H, Q] scaled forecasts.
        """
        batch = x.shape[0]
        steps = x.reshape(batch, self.input_size // self.patch_len, self.patch_len)  # [B, L] -> [B, S, P]
        emb = None
        if self.embedding is not None:
            if series_idx is None:
                raise ValueError("this model has a series embedding: pass series_idx")
            idx = torch.where(series_idx < 0, torch.full_like(series_idx, self.n_series), series_idx)
            emb = self.embedding(idx)  # [B] -> [B, E]
            steps = torch.cat([steps, emb.unsqueeze(1).expand(-1, steps.shape[1], -1)], dim=2)  # [B, S, P+E]
        out, _ = self.lstm(steps)  # [B, S, P(+E)] -> [B, S, hidden]
        last = out[:, -1]  # [B, S, hidden] -> [B, hidden]
        if emb is not None:
            last = torch.cat([last, emb], dim=1)  # [B, hidden] -> [B, hidden + E]
        ctx = self.context(last).reshape(batch, self.horizon, self.decoder_size)  # [B, H*D] -> [B, H, D]
        if self.n_calendar > 0:
            if calendar is None:
                raise ValueError("this model reads calendar features: pass calendar")
            ctx = torch.cat([ctx, calendar], dim=2)  # [B, H, D] -> [B, H, D + C]
        out = self.decoder(ctx)  # [B, H, D(+C)] -> [B, H, Q]
        if self.naive_skip:
            out = out + x[:, self.naive_index].unsqueeze(-1)  # [B, L] -> [B, H] -> [B, H, 1]
        return out


def train_flops_per_window(config: TrainConfig) -> float:
    """Dense FLOPs of one training window (forward + backward = 3 x forward matmul FLOPs).

    Counts the LSTM gate matmuls and the decoder; ignores elementwise work.
    """
    steps = config.input_size // config.patch_len
    four_h = 4 * config.hidden_size
    lstm = 0
    for layer in range(config.num_layers):
        n_in = config.patch_len + config.embedding_dim if layer == 0 else config.hidden_size
        lstm += steps * 2 * (n_in + config.hidden_size) * four_h
    d = config.decoder_size
    head = 2 * (config.hidden_size + config.embedding_dim) * config.horizon * d
    dec = config.horizon * 2 * (d * d + d * config.n_outputs)
    return 3.0 * (lstm + head + dec)
