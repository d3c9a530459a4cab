"""stockcast: daily stock prices in, served multi-day forecasts out.

Importing the package sets `STOCKCAST_ROOT` (which `configs/paths` reads) to this checkout unless it is
set already, so entry points need no preamble before their imports.
"""

import os
from pathlib import Path

# The checkout the package is installed from (editable): configs/, handlers/, model_store/, serve/.
ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("STOCKCAST_ROOT", str(ROOT))
