"""Container health check: /ping on the local inference port, with the inference key (auth guards /ping too).

`python -m stockcast.serving.healthcheck --config C --key-file K` exits 0 when TorchServe answers Healthy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

from stockcast.serving.client import call, read_key
from stockcast.serving.server import read_properties


def healthy(config: Path, key_file: Path) -> bool:
    port = urlparse(read_properties(config)["inference_address"]).port
    try:
        answer = call("GET", f"http://127.0.0.1:{port}/ping", read_key(key_file, "inference"), timeout=4)
        return answer.status == 200 and answer.json().get("status") == "Healthy"
    except (OSError, ValueError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("config.properties"))
    parser.add_argument("--key-file", type=Path, default=Path("key_file.json"))
    args = parser.parse_args()
    sys.exit(0 if healthy(args.config, args.key_file) else 1)


if __name__ == "__main__":
    main()
