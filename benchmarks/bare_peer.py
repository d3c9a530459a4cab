"""The bare peer `make bench` measures TorchServe against: FastAPI + uvicorn, 2 worker processes of one torch
thread each, answering `POST /predictions/lstm` with the forward pass of an LSTM of the served net's size and the
10 medians out. It reads the same request body (the columns the served model reads, its last `window` days) and
does nothing else: no checks, no volatility, no ranges, no batching, no auth. What a forecast costs at the least.
With `--store`, a body with no `prices` (`{"stock": X}`) is answered from X's last `window` bars in that price
store, read into memory at startup: the same by name.

    python -m benchmarks.bare_peer --archive model_store/lstm.mar --port 8091 [--store /tmp/store]
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI, Request, Response
from torch import nn

from benchmarks.peers import arguments
from stockcast.runtime.bundle import BUNDLES, METADATA, PORTFOLIO, BundleMeta
from stockcast.runtime.store import PriceStore

ARCHIVE = "STOCKCAST_BARE_PEER_ARCHIVE"  # how the workers, started by uvicorn, learn the archive
STORE = "STOCKCAST_BARE_PEER_STORE"  # and the price store, where there is one
WORKERS = 2  # one per core, as TorchServe's
COLUMNS = {"Close": "prices", "Open": "open", "High": "high", "Low": "low"}  # a model's feature -> its request field


class BareNet(nn.Module):
    """An LSTM with the served net's layers, hidden size and head; the request's rows in, the median level out."""

    def __init__(self, meta: BundleMeta) -> None:
        super().__init__()
        net = meta.net
        self.fields = [COLUMNS[name] for name in meta.features]
        self.window, self.horizon = meta.window, meta.horizon
        self.levels = len(meta.levels or [None])
        self.lstm = nn.LSTM(len(self.fields), net.get("hidden", 64), num_layers=net.get("layers", 2), batch_first=True)
        self.head = nn.Linear(self.lstm.hidden_size, self.horizon * self.levels)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """[B, window, F] -> [B, H]: the median level of each step."""
        sequence, _ = self.lstm(rows)
        return self.head(sequence[:, -1]).reshape(len(rows), self.horizon, self.levels)[..., self.levels // 2]

    def rows(self, body: dict) -> torch.Tensor:
        """A request body -> [1, window, F]: the last `window` values of each field the model reads."""
        return torch.tensor([body[field][-self.window:] for field in self.fields]).T[None]


def first_bundle(archive: Path) -> BundleMeta:
    """The metadata of the archive's first bundle (the one a single-ticker archive serves)."""
    with zipfile.ZipFile(archive) as mar:
        members = json.loads(mar.read(PORTFOLIO))["members"]
        return BundleMeta.from_dict(json.loads(mar.read(f"{BUNDLES}/{next(iter(members.values()))}/{METADATA}")))


def held_bars(folder: Path, window: int) -> dict[str, dict[str, list[float]]]:
    """Every ticker's last `window` bars in the price store `folder`, as a request would send them."""
    store = PriceStore(folder, max_stale_sessions=None)
    return {symbol: {field: store.bars(symbol).columns[column][-window:] for column, field in COLUMNS.items()}
            for symbol in store.tickers()}


def create_app() -> FastAPI:
    """One uvicorn worker's app."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = BareNet(first_bundle(Path(os.environ[ARCHIVE]))).eval()
    held = held_bars(Path(os.environ[STORE]), net.window) if os.environ.get(STORE) else {}
    app = FastAPI()

    @app.post("/predictions/lstm")
    async def predict(request: Request) -> Response:
        body = json.loads(await request.body())
        with torch.inference_mode():
            medians = net(net.rows(body if "prices" in body else held[body["stock"]]))[0].tolist()
        return Response(json.dumps({"forecast": medians}), media_type="application/json")

    return app


def main() -> None:
    args = arguments(__doc__)
    os.environ[ARCHIVE] = str(args.archive.resolve())
    if args.store:
        os.environ[STORE] = str(args.store.resolve())
    uvicorn.run("benchmarks.bare_peer:create_app", factory=True, host="127.0.0.1", port=args.port, workers=WORKERS,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
