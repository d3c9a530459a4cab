"""TorchServe's inference phase: one forward pass per bundle and number of rows for a whole batch's forecasts."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stockcast.runtime.preprocess import Instance


def forecast(instances: Sequence[Instance]) -> list[torch.Tensor]:
    """Each instance's model output ([H], or [H, Q] for a quantile model), in order: requests send between
    `window` and `context` rows, and the forecasts of one bundle with as many rows share a forward pass."""
    outputs: list[torch.Tensor] = [torch.empty(0)] * len(instances)
    groups: dict[tuple[str, int], list[int]] = {}
    for index, instance in enumerate(instances):
        groups.setdefault((instance.bundle.name, len(instance.history)), []).append(index)
    with torch.inference_mode():
        for indices in groups.values():
            net = instances[indices[0]].bundle.net
            batch = torch.stack([instances[index].history for index in indices]).float()  # [B, L, F]
            for index, output in zip(indices, net(batch).unbind(), strict=True):
                outputs[index] = output
    return outputs
