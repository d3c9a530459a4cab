"""The code an archive ships and TorchServe's worker runs: the handler, its phases (preprocess, inference,
postprocess), the request checks, the routing, the description and the bundle reader.

It imports only torch, the standard library, `ts` and orjson (`make lint` checks it: the `runtime` contract in
pyproject.toml), so an archive runs on any TorchServe with torch, and the training side, the tests and the worker
import the same modules by the same names.
"""
