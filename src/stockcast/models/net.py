"""ForecastNet: raw prices in, raw prices (or quantile prices) out. Imports torch only: this file ships in the archive.

Scaling, the volatility estimate's starting point and the target transform are buffers, so the module
alone turns a price window into a forecast; training (via `Forecaster`) and serving run the same computation.
The daily variance estimators live here too, so the baselines (eval/baselines.py) compute what the served net does.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

PRICE_FEATURES = ("Open", "High", "Low", "Close", "Adj Close")
TARGETS = ("volatility", "relative", "level")
# Where an untrained volatility net starts (its scale per step, with the training windows' standardized quantiles):
# "ewma", the range EWMA at the origin for every step; "panel_har", panel HAR's forecast of each step's mean daily
# variance (slopes pooled over the training tickers, `set_panel_har`; the ticker's level from the window's own days).
STARTS = ("ewma", "panel_har")
HAR_SPANS = (1, 5, 22)  # panel HAR's regressors: the log mean variance of the last 1, 5 and 22 days
EWMA_LAMBDA = 0.94  # RiskMetrics' daily decay: the starting variance weighs 0.94**n after n returns
# Daily variance estimators: squared close-to-close log returns, or the day's open, high, low and close
# (Parkinson 1980; Garman and Klass 1980; Rogers and Satchell 1991), several times more efficient.
ESTIMATORS = ("close", "parkinson", "garman_klass", "rogers_satchell")
BARS = ("Close", "Open", "High", "Low")  # a day's bar, in the order daily_variance reads it
CALIBRATION_CHUNK = 32768  # windows `calibrate` reads at once
FLOOR = 0.01  # a day's variance is at least this share of the typical (median) variance before a log is taken:
# a day with no range (High = Low, thin trading) is real data, and its estimate is 0


def daily_variance(bars: torch.Tensor, estimator: str = "close") -> torch.Tensor:
    """[..., L, 4] bars (Close, Open, High, Low), oldest first -> [..., L - 1] daily variances of rows 1..L-1.

    An open or close outside the day's [Low, High] widens the range to hold it, as the data checks do."""
    if estimator == "close":
        closes = bars[..., 0].log()
        return (closes[..., 1:] - closes[..., :-1]).square()
    # One copy makes each column contiguous: the arithmetic below then runs vectorised, with the same results.
    close, open_, high, low = bars[..., 1:, :4].log().movedim(-1, 0).contiguous()
    high = torch.maximum(high, torch.maximum(open_, close))
    low = torch.minimum(low, torch.minimum(open_, close))
    if estimator == "parkinson":
        return (high - low).square() / (4 * math.log(2))
    if estimator == "garman_klass":
        return 0.5 * (high - low).square() - (2 * math.log(2) - 1) * (close - open_).square()
    if estimator == "rogers_satchell":
        return (high - close) * (high - open_) + (low - close) * (low - open_)
    raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")


def ewma_variance(variances: torch.Tensor, initial: torch.Tensor, decay: float = EWMA_LAMBDA) -> torch.Tensor:
    """[B, N] daily variances (oldest first) -> [B] their EWMA after the last one (RiskMetrics for squared returns).

    v_n = decay v_{n-1} + (1 - decay) d_n from v_0 = `initial`, written as one weighted sum so
    that any N costs one pass and no weight overflows.
    """
    count = variances.shape[-1]
    powers = _ewma_weights(decay, count, variances.dtype, variances.device)
    return decay ** count * initial + (1 - decay) * (variances * powers).sum(-1)


@functools.lru_cache(maxsize=64)
def _ewma_weights(decay: float, count: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """decay ** (count - 1 .. 0), made once per length: a constant each forward pass would otherwise make again
    (outside inference mode, so training can use what serving made)."""
    with torch.inference_mode(False):
        return decay ** torch.arange(count - 1, -1, -1, dtype=dtype, device=device)


def _trailing_means(variances: torch.Tensor, days: int) -> torch.Tensor:
    """[B, D] -> [B, D - days + 1]: the mean of each run of `days` consecutive values, the run ending at column
    days - 1, days, ..., D - 1."""
    sums = F.pad(variances.cumsum(-1), (1, 0))
    return (sums[:, days:] - sums[:, :-days]) / days


@functools.lru_cache(maxsize=16)
def _root_steps(horizon: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """sqrt(1 .. horizon), the growth of a step's spread, made once likewise."""
    with torch.inference_mode(False):
        return torch.arange(1, horizon + 1, dtype=dtype, device=device).sqrt()


class ForecastNet(nn.Module):
    """LSTM over the last `window` rows of prices; a linear head emits all `horizon` steps at once.

    target="volatility": the LSTM reads the window's daily log returns divided by sigma, the EWMA
    (`decay`) of the `volatility` estimator's daily variances over the last `context` rows (started from
    the training median variance, so fewer rows still work), plus log(sigma / training median sigma) and,
    per length n in `spans`, log(mean variance of the last n days / sigma^2) (a HAR-like view of the
    context); the head predicts log(close[t+h] / close[t]) / (sigma sqrt(h)). Other price features enter
    as log(feature / close) / sigma. A range estimator (`volatility` other than "close") needs Open, High
    and Low among the features.
    target="relative": the head predicts each step's change relative to the window's last close (in
    units of the training changes' std); price features enter relative to that close too.
    target="level": the head predicts min-max scaled closes; every feature enters min-max scaled.
    Non-price features (Volume) are always min-max scaled. Feature 0 is the close.

    quantiles=None gives a point net ([B, H] out); levels in (0, 1) give [B, H, Q] quantile prices,
    non-crossing by construction: the lowest level plus cumulative softplus increments.
    """

    # Buffers (register_buffer in __init__), declared for type checkers: nn.Module's __getattr__ is untyped.
    is_price: torch.Tensor
    feature_min: torch.Tensor
    feature_max: torch.Tensor
    change_std: torch.Tensor
    median_variance: torch.Tensor
    variance_ratio: torch.Tensor
    levels: torch.Tensor | None  # None for a point net
    har_slopes: torch.Tensor
    har_level: torch.Tensor
    start_quantiles: torch.Tensor
    weight: torch.Tensor

    def __init__(self, features: list[str], hidden: int = 64, layers: int = 2, dropout: float = 0.0,
                 horizon: int = 10, target: str = "volatility", quantiles: list[float] | None = None,
                 window: int | None = None, context: int | None = None, volatility: str = "close",
                 decay: float = EWMA_LAMBDA, spans: list[int] | None = None, start: str = "ewma") -> None:
        super().__init__()
        if volatility not in ESTIMATORS:
            raise ValueError(f"volatility must be one of {ESTIMATORS}, got {volatility!r}")
        if volatility != "close" and not set(BARS) <= set(features):
            raise ValueError(f"volatility={volatility!r} reads the day's range: features must hold {list(BARS)}, "
                             f"got {features}")
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.spans = [int(n) for n in spans or []]
        if any(n < 1 or n >= (context or window or 2) for n in self.spans):
            raise ValueError(f"spans must be day counts below the context ({context}), got {spans}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if start not in STARTS or (start == "panel_har" and target != "volatility"):
            raise ValueError(f"start must be one of {STARTS} (panel_har: target=volatility), got {start!r}")
        if not features or features[0] != "Close":
            raise ValueError(f"features must start with Close, got {features}")
        if quantiles is not None and not (quantiles and list(quantiles) == sorted(set(quantiles))
                                          and quantiles[0] > 0 and quantiles[-1] < 1):
            raise ValueError(f"quantiles must be increasing levels in (0, 1), got {quantiles}")
        if quantiles is not None and 0.5 not in quantiles:
            raise ValueError(f"quantiles must hold 0.5: the point forecast is the median, got {quantiles}")
        if window is not None and window < (2 if target == "volatility" else 1):
            raise ValueError(f"window too short for target {target!r}: {window}")
        if context is not None and context < (window or 2):
            raise ValueError(f"context ({context}) must cover the window ({window}) and at least 2 closes")
        self.target, self.horizon, self.window, self.context = target, horizon, window, context
        self.estimator, self.decay, self.start = volatility, decay, start
        # Where the bar's columns sit among the features; the close estimator reads column 0 alone. A view of the
        # leading columns where they are the bar in order (the default features), not a copy.
        self.bars = [features.index(name) for name in BARS] if volatility != "close" else [0, 0, 0, 0]
        self._bar_columns = slice(0, 1) if volatility == "close" else (slice(0, 4) if self.bars == [0, 1, 2, 3]
                                                                      else self.bars)
        n_features = len(features)
        extra = 1 + len(self.spans) if target == "volatility" else 0
        self.lstm = nn.LSTM(n_features + extra, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, horizon * len(quantiles or [None]))
        is_price = [name in PRICE_FEATURES for name in features]
        self._all_prices = all(is_price)  # then every input is a log ratio: no min-max scaling to compute
        self.register_buffer("is_price", torch.tensor(is_price, dtype=torch.bool))
        self.register_buffer("feature_min", torch.zeros(n_features))
        self.register_buffer("feature_max", torch.ones(n_features))
        self.register_buffer("change_std", torch.ones(()))
        self.register_buffer("median_variance", torch.ones(()))  # in the estimator's units
        # Training mean squared close-to-close return / mean daily estimate: a range estimator sees the day's
        # trading only, not the overnight gap, so sigma = sqrt(variance_ratio x EWMA) is in close-to-close units.
        self.register_buffer("variance_ratio", torch.ones(()))
        self.register_buffer("levels", None if quantiles is None else torch.tensor(quantiles))
        # Panel HAR's pooled slopes [spans, H] and the training windows' mean level [H] (a window too short for
        # its own level gets it): set by `set_panel_har` and `calibrate`, read by start="panel_har".
        self.register_buffer("har_slopes", torch.zeros(len(HAR_SPANS), horizon))
        self.register_buffer("har_level", torch.zeros(horizon))
        # The served forecast: weight x the net's quantiles + (1 - weight) x its start's (quantile averaging);
        # the start's encoded quantiles [H, Q] are kept here, since training moves the head's bias.
        self.register_buffer("start_quantiles", torch.zeros(horizon, len(quantiles or [None])))
        self.register_buffer("weight", torch.ones(()))
        if quantiles is not None:
            self._start_at_normal_quantiles()

    def _start_at_normal_quantiles(self) -> None:
        """Head bias = standard normal quantiles: an untrained volatility net starts as EWMA x normal."""
        assert self.levels is not None  # called for a quantile net only
        normal = torch.special.ndtri(self.levels.double())  # [Q]
        self._start_at(normal.expand(self.horizon, -1))

    def _start_at(self, quantiles: torch.Tensor) -> None:
        """Head bias = these [H, Q] increasing quantiles of the encoded target (the lowest, then softplus^-1 of
        the gaps)."""
        gaps = (quantiles[:, 1:] - quantiles[:, :-1]).clamp_min(1e-4)
        with torch.no_grad():
            self.head.bias.copy_(torch.cat([quantiles[:, :1], gaps.expm1().log()], dim=1).reshape(-1).float())
            self.start_quantiles.copy_(torch.cat([quantiles[:, :1], quantiles[:, :1] + gaps.cumsum(-1)], dim=1))

    def set_panel_har(self, slopes: list[list[float]]) -> None:
        """Panel HAR's pooled slopes [spans][H] (`eval.baselines.PanelHar.pooled`), before `calibrate`."""
        self.har_slopes.copy_(torch.tensor(slopes))

    def set_scaler(self, feature_min: list[float], feature_max: list[float], change_std: float,
                   median_variance: float | None = None) -> None:
        """Copy training-period statistics into the buffers (saved with the weights).

        median_variance: the median over the training rows of the EWMA variance of daily log returns
        (needed by target="volatility"; None keeps the current value).
        """
        self.feature_min.copy_(torch.tensor(feature_min))
        self.feature_max.copy_(torch.tensor(feature_max))
        self.change_std.fill_(change_std)
        if median_variance is not None:
            self.median_variance.fill_(median_variance)

    def calibrate(self, prices: torch.Tensor, targets: torch.Tensor) -> None:
        """Fit the volatility's constants on the training windows [N, L, F] and their next closes [N, H]: the
        median, over the windows' ends, of the EWMA of the estimator's daily variances (each started from their
        mean), and the ratio of the mean squared close-to-close return to their mean. A quantile net of
        target="volatility" then starts, untrained, at the EWMA baseline (eval.baselines.Ewma): sigma sqrt(h)
        times the training windows' quantiles of the standardized changes, its head's weights zero."""
        parts = prices.split(CALIBRATION_CHUNK)  # float64 copies of a million windows would take gigabytes
        days = self.daily_variances(prices[:1].double()).shape[-1]  # C - 1
        if days == 0 or len(prices) == 0:
            return
        sums = torch.zeros(2, dtype=torch.float64)  # the range variances', the squared close returns'
        for part in parts:
            sums[0] += self.daily_variances(part.double()).sum()
            sums[1] += daily_variance(part.double()[..., -days - 1:, :1].expand(-1, -1, 4), "close").sum()
        mean = sums[0] / (len(prices) * days)
        ends = torch.cat([ewma_variance(self.daily_variances(part.double()), mean, self.decay) for part in parts])
        self.median_variance.fill_(float(ends.median()) or 1.0)
        self.variance_ratio.fill_(float(sums[1] / sums[0]) if sums[0] > 0 else 1.0)
        if self.start == "panel_har":
            own = [self._har_levels(self.daily_variances(part.double())) for part in parts]
            if own[0] is not None:
                self.har_level.copy_(torch.cat([level for level in own if level is not None]).mean(0))
        if self.levels is None or self.target != "volatility":
            return
        with torch.no_grad():
            standardized = torch.cat([self.encode_target(chunk.double(), part.double()) for part, chunk
                                      in zip(parts, targets.split(CALIBRATION_CHUNK), strict=True)])  # [N, H]
            quantiles = torch.quantile(standardized, self.levels.double(), dim=0).T  # [H, Q]
            self._start_at(quantiles)
            self.head.weight.zero_()


    def _span(self) -> torch.Tensor:
        return (self.feature_max - self.feature_min).clamp_min(1e-8)

    def _rows(self, prices: torch.Tensor) -> torch.Tensor:
        """The last `window` rows, the ones the LSTM reads."""
        if self.window is not None and prices.shape[1] < self.window:
            raise ValueError(f"need at least {self.window} rows of prices, got {prices.shape[1]}")
        return prices if self.window is None else prices[:, -self.window:]

    def daily_variances(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, L, F] raw prices -> [B, C - 1] the estimator's daily variances over the last `context` rows."""
        rows = prices[:, -(self.context or prices.shape[1]):]  # [B, C, F]
        return daily_variance(rows[..., self._bar_columns], self.estimator)

    def volatility(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, L, F] raw prices -> [B] daily EWMA volatility at the last close, over the last `context` rows."""
        variance = ewma_variance(self.daily_variances(prices), self.median_variance, self.decay)  # [B]
        return (self.variance_ratio * variance).clamp_min(1e-12).sqrt()

    def step_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        """[B] sigma -> [B, H]: sigma sqrt(h), the spread of each step's log change in encoded units."""
        return sigma[:, None] * _root_steps(self.horizon, sigma.dtype, sigma.device)

    def scale(self, prices: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L, F] raw prices -> [B, H], each step's unit of the encoded log change: sigma sqrt(h) from the EWMA
        start; from the panel HAR start, panel HAR's daily volatility over the next h days times sqrt(h).
        `sigma`: `volatility(prices)` when the caller has it already."""
        if self.start == "panel_har":
            return self.har_volatility(prices) * _root_steps(self.horizon, prices.dtype, prices.device)
        return self.step_scale(self.volatility(prices) if sigma is None else sigma)

    def har_volatility(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, L, F] raw prices -> [B, H]: panel HAR's forecast of the daily volatility over the next h days,
        exp((level_h + slopes_h . log mean variances of the last 1, 5, 22 days) / 2), each log floored at FLOOR
        times the window's median variance (as eval.baselines.Har floors). The level is the window's own: the mean
        over its days e of log(mean variance of e + 1..e + h) less the slopes times the regressors at e (panel HAR's
        fixed effect, fit on the window), so it needs max(HAR_SPANS) + horizon + 1 rows (33 for 10 steps); a
        shorter window gets the training windows' mean level."""
        variances = self.daily_variances(prices)  # [B, D]
        floor = (FLOOR * variances.median(-1).values).clamp_min(1e-12)[:, None]  # [B, 1]
        slopes = self.har_slopes.to(variances.dtype)  # [S, H]
        logs = [_trailing_means(variances, n).maximum(floor).log() for n in HAR_SPANS]  # [B, D - n + 1] each
        current = torch.stack([log[:, -1] for log in logs], dim=-1)  # [B, S]
        level = self._har_levels(variances, logs, floor)
        if level is None:
            level = self.har_level.to(variances.dtype).expand(len(variances), -1)
        return (0.5 * (level + current @ slopes)).exp()

    def _har_levels(self, variances: torch.Tensor, logs: list[torch.Tensor] | None = None,
                    floor: torch.Tensor | None = None) -> torch.Tensor | None:
        """[B, D] daily variances -> [B, H] each window's own panel HAR level per step; None when D is too short
        (fewer than max(HAR_SPANS) + horizon days)."""
        longest, days = max(HAR_SPANS), variances.shape[-1]
        if days < longest + self.horizon:
            return None
        if floor is None:
            floor = (FLOOR * variances.median(-1).values).clamp_min(1e-12)[:, None]
        if logs is None:
            logs = [_trailing_means(variances, n).maximum(floor).log() for n in HAR_SPANS]
        design = torch.stack([log[:, -(days - longest + 1):] for log in logs], dim=-1)  # [B, E, S]: days longest-1..
        slopes = self.har_slopes.to(variances.dtype)
        levels = []
        for step in range(1, self.horizon + 1):
            ahead = _trailing_means(variances, step)[:, longest:].maximum(floor).log()  # [B, E - step]
            levels.append(ahead.mean(-1) - design[:, :ahead.shape[1]].mean(1) @ slopes[:, step - 1])
        return torch.stack(levels, dim=-1)

    def encode_inputs(self, prices: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L, F] raw -> [B, W, F] network inputs ([B, W - 1, F + 1] for target="volatility").

        `sigma` ([B], target="volatility"): `volatility(prices)` when the caller has it already."""
        rows = self._rows(prices)
        if self.target == "volatility" and self._all_prices:  # the default: the same values, fewer operations
            sigma = (self.volatility(prices) if sigma is None else sigma)[:, None, None]  # [B, 1, 1]
            logs = rows.log()  # [B, W, F]
            # Day t >= 1 against its reference: the close against day t - 1's close, every other price against
            # day t's close.
            reference = logs[:, :-1, :1] if rows.shape[-1] == 1 else torch.cat(
                [logs[:, :-1, :1], logs[:, 1:, :1].expand(-1, -1, rows.shape[-1] - 1)], dim=-1)
            changes = (logs[:, 1:] - reference) / sigma  # [B, W - 1, F]: returns, then spreads
        else:
            scaled = (rows - self.feature_min) / self._span()  # [B, W, F]
            if self.target == "level":
                return scaled
            if self.target == "relative":
                relative = (rows / rows[:, -1:, :1] - 1) / self.change_std  # [B, W, F]
                return torch.where(self.is_price, relative, scaled)
            sigma = (self.volatility(prices) if sigma is None else sigma)[:, None, None]  # [B, 1, 1]
            logs = torch.where(self.is_price, rows, 1.0).log()  # [B, W, F]; non-price columns unused
            returns = (logs[:, 1:, :1] - logs[:, :-1, :1]) / sigma  # [B, W - 1, 1]
            spreads = torch.where(self.is_price, (logs - logs[..., :1]) / sigma, scaled)[:, 1:, 1:]  # [B, W - 1, F - 1]
            changes = torch.cat([returns, spreads], dim=-1)
        typical = (self.variance_ratio * self.median_variance).sqrt()
        level = [(sigma / typical).log()]  # [B, 1, 1] each, the same on every row
        if self.spans:
            variances = self.daily_variances(prices) * self.variance_ratio
            floor = FLOOR * typical.square()
            level += [(variances[:, -n:].mean(-1).clamp_min(floor)[:, None, None] / sigma.square()).log()
                      for n in self.spans]
        scale = (level[0] if len(level) == 1 else torch.cat(level, dim=-1)).expand(-1, changes.shape[1], -1)
        return torch.cat([changes, scale], dim=-1)  # [B, W - 1, F + 1 + spans]

    def encode_target(self, targets: torch.Tensor, prices: torch.Tensor,
                      scale: torch.Tensor | None = None) -> torch.Tensor:
        """[B, H] raw closes -> [B, H] in the space the head predicts; `scale`: `self.scale(prices)` when known."""
        if self.target == "level":
            return (targets - self.feature_min[0]) / self._span()[0]
        last_close = prices[:, -1, :1]  # [B, 1]
        if self.target == "relative":
            return (targets / last_close - 1) / self.change_std
        return (targets / last_close).log() / (self.scale(prices) if scale is None else scale)

    def decode(self, outputs: torch.Tensor, prices: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """[B, H] or [B, H, Q] head outputs -> raw closes of the same shape (monotone in the outputs); `scale`:
        `self.scale(prices)` when known."""
        trail = (1,) * (outputs.dim() - 2)  # a level axis broadcasts against per-step scales
        if self.target == "level":
            return outputs * self._span()[0] + self.feature_min[0]
        last_close = prices[:, -1, :1].reshape(-1, 1, *trail)  # [B, 1(, 1)]
        if self.target == "relative":
            return last_close * (1 + outputs * self.change_std)
        scale = self.scale(prices) if scale is None else scale  # [B, H]
        return last_close * (outputs * scale.reshape(*outputs.shape[:2], *trail)).exp()

    def predict_encoded(self, prices: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L, F] raw prices -> [B, H] (or [B, H, Q]) head outputs: the training loss compares these."""
        sequence, _ = self.lstm(self.encode_inputs(prices, sigma))  # [B, W, hidden]
        outputs = self.head(sequence[:, -1])  # [B, H * Q]
        if self.levels is None:
            return outputs
        outputs = outputs.reshape(len(outputs), self.horizon, -1)  # [B, H, Q]
        steps = F.softplus(outputs)[..., 1:].cumsum(-1)  # [B, H, Q - 1], non-decreasing (all of it: contiguous, fast)
        return torch.cat([outputs[..., :1], outputs[..., :1] + steps], dim=-1)

    def forward(self, prices: torch.Tensor) -> torch.Tensor:
        """[B, L, F] raw prices (oldest first, L >= window) -> [B, H] closes or [B, H, Q] quantile closes: the
        served forecast, `weight` x the net's quantiles + (1 - weight) x its start's."""
        if self.levels is None or float(self.weight) == 1.0:
            return self.parts(prices, start=False)[0]
        net, start = self.parts(prices)
        return self.weight * net + (1 - self.weight) * start

    def parts(self, prices: torch.Tensor, start: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, L, F] raw prices -> the net's own forecast and (`start`: else the net's again) its start's, the
        untrained net's: the scale per step times the training windows' standardized quantiles."""
        sigma = self.sigma(prices)  # once for inputs, the scale and decoding
        scale = self.scale(prices, sigma) if self.target == "volatility" else None
        net = self.decode(self.predict_encoded(prices, sigma), prices, scale)
        if not start or self.levels is None:
            return net, net
        return net, self.decode(self.start_quantiles.expand(len(prices), -1, -1), prices, scale)

    def sigma(self, prices: torch.Tensor) -> torch.Tensor | None:
        """`volatility(prices)` for target="volatility" (the only form that reads it), else None."""
        return self.volatility(prices) if self.target == "volatility" else None

