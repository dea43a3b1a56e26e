"""The command line of the ``samples/make_samples.py`` scripts that regenerate the small data sets
shipped with each task: one place that decides where the files go and how they are written (UTF-8
bytes, so a file is byte-identical on every platform), and the line each prints."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def write_samples_main(doc: str, default_out: Path, make_files: Callable[[], dict[str, str]]) -> None:
    """``--out`` (default ``default_out``, the script's folder), then every ``{relative path: text}``
    of ``make_files()`` written there."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=default_out, help="folder to write the files to")
    out = p.parse_args().out
    for name, text in make_files().items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        print(f"wrote {path}: {text.count(chr(10))} lines")
