"""What a command's console shows: one line per thing worth knowing. Its log file (Hydra's `<job>.log` in the
run's output folder) keeps every line, this project's DEBUG lines and the third-party noise included."""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

# Third-party messages that tell this project's user nothing, matched by message (their loggers also say things
# that matter). Each with the library that says it.
NOISE = (
    re.compile(r"Tip: For seamless cloud logging"),  # Lightning: an advertisement, once per Trainer
    re.compile(r"^(GPU|TPU) available: False"),  # Lightning: the trainer config says the accelerator already
    re.compile(r"isinstance\(treespec, LeafSpec\)` is deprecated"),  # Lightning 2.6 on torch 2.13, per fit
)
# Lightning's hint to prefix `srun` where SLURM is installed: noise outside a SLURM job, a real hint inside one.
SRUN_HINT = re.compile(r"The `srun` command is available on your system but is not used")


class Console(logging.Filter):
    """The console handler's filter: no DEBUG lines unless `verbose`, and none of the known noise."""

    def __init__(self, verbose: bool = False) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO and not self.verbose:
            return False
        if record.name == "py.warnings":  # Lightning's own warning format ends in a newline: no blank line after
            record.msg, record.args = record.getMessage().rstrip(), ()
        return not noise(record.getMessage())


def noise(message: str) -> bool:
    """Whether `message` is known third-party noise."""
    if SRUN_HINT.search(message):
        return "SLURM_JOB_ID" not in os.environ
    return any(pattern.search(message) for pattern in NOISE)


def log_file() -> str:
    """The running Hydra job's log file, for the line a command ends with."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    path = Path(hydra.runtime.output_dir) / f"{hydra.job.name}.log"
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def capture_warnings() -> None:
    """Python warnings through logging (`py.warnings`), one line each, so the console's filter sees them and the
    log file keeps them; for entry points, before they configure logging."""
    warnings.formatwarning = _one_line
    logging.captureWarnings(True)


def _one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
              line: str | None = None) -> str:
    return f"{filename}:{lineno}: {category.__name__}: {message}"
