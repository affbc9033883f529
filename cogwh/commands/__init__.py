"""One module per cogwh subcommand, and the argument types they share."""

from __future__ import annotations

import argparse
from pathlib import Path


def pem_file(text: str) -> str:
    """An argparse type: a readable file (a CA bundle or certificate, PEM)."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a readable file")
    return text
