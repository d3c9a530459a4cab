"""Faults injected into one DDP rank by the tests (a Lightning callback, added with `+callbacks.fault=...`)."""

from __future__ import annotations

import lightning as L


class LoseCheckpointOnRank(L.Callback):
    """On rank `rank` only, point the best checkpoint at a file that is not there once the fit ends: what a rank
    sees when the checkpoint folder is not on a disk it shares with rank 0 (it fails reloading the best epoch)."""

    def __init__(self, rank: int = 1) -> None:
        self.rank = rank

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank == self.rank:
            trainer.checkpoint_callback.best_model_path = "/nonexistent/checkpoint-on-rank-0's-disk.ckpt"
