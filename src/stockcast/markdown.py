"""Generated sections of the repo's Markdown files (docs/results.md, BENCHMARKS.md), between HTML markers."""

from __future__ import annotations

import re
from pathlib import Path

from stockcast.errors import StockcastError


def replace_section(path: Path, name: str, body: str) -> None:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in `path` with `body`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    if start not in text or end not in text:
        raise StockcastError(f"{path} has no {start} ... {end} section")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    path.write_text(pattern.sub(lambda _: f"{start}\n{body}\n{end}", text))
