"""Container health check: /ping on the local inference port, with the inference key (auth guards /ping too).

`python -m stockcast.serving.healthcheck --config C --key-file K` exits 0 when TorchServe answers Healthy.
It imports the standard library only (and the package's own stdlib-only modules): it runs on every probe.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlparse

from stockcast.serving.client import healthy, read_key
from stockcast.serving.settings import read_properties


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("config.properties"))
    parser.add_argument("--key-file", type=Path, default=Path("key_file.json"))
    args = parser.parse_args()
    # The container's config listens on 0.0.0.0: ask on loopback.
    port = urlparse(read_properties(args.config)["inference_address"]).port
    sys.exit(0 if healthy(f"http://127.0.0.1:{port}", read_key(args.key_file, "inference"), timeout=4) else 1)


if __name__ == "__main__":
    main()
