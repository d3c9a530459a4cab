"""TorchServe's inference phase: one forward pass per bundle and number of rows for a whole batch's forecasts."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stockcast.runtime.failure import ServerError, shared
from stockcast.runtime.preprocess import Instance


def forecast(instances: Sequence[Instance]) -> list[torch.Tensor | ServerError]:
    """Each instance's model output ([H], or [H, Q] for a quantile model), in order: requests send between
    `window` and `context` rows, and the forecasts of one bundle with as many rows share a forward pass. A pass
    that raises is run again per forecast: only the forecasts it fails on get their ServerError."""
    outputs: list[torch.Tensor | ServerError] = [torch.empty(0)] * len(instances)
    groups: dict[tuple[str, int], list[Instance]] = {}
    places: dict[tuple[str, int], list[int]] = {}
    for index, instance in enumerate(instances):
        key = (instance.bundle.name, len(instance.history))
        groups.setdefault(key, []).append(instance)
        places.setdefault(key, []).append(index)
    with torch.inference_mode():
        for key, group in groups.items():
            for index, output in zip(places[key], shared(_forward, group, "forecasting"), strict=True):
                outputs[index] = output
    return outputs


def _forward(group: Sequence[Instance]) -> list[torch.Tensor]:
    """One forward pass for forecasts of one bundle and as many rows."""
    batch = torch.stack([instance.history for instance in group]).float()  # [B, L, F]
    return list(group[0].bundle.net(batch).unbind())
