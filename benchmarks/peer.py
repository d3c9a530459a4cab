"""The peer `make bench` measures TorchServe against: a minimal FastAPI + uvicorn server (one process, no
batching, no auth) answering `POST /predictions/lstm` with the same archived handler in-process, so both
servers do the same parsing, forward pass and JSON per request and differ only in the server around it.

    python -m benchmarks.peer --archive model_store/lstm.mar --port 8090
"""

from __future__ import annotations

import torch
import uvicorn
from fastapi import FastAPI, Request, Response

from benchmarks.inprocess import worker
from benchmarks.peers import arguments


def main() -> None:
    args = arguments(__doc__)
    torch.set_num_threads(1)
    app = FastAPI()
    with worker(args.archive) as loaded:

        @app.post("/predictions/lstm")
        async def predict(request: Request) -> Response:
            [(status, body)] = loaded.handle([await request.body()])
            return Response(body, status_code=status, media_type="application/json")

        @app.get("/ping")
        async def ping() -> dict[str, str]:
            return {"status": "Healthy"}

        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
