"""Reading tab-separated data files, with every problem either raised up front or counted.

One rule for GLUE and text classification alike: a problem that makes the whole file unusable (it is
missing, unreadable, not UTF-8, empty, or has no usable row) raises a `DataFormatError` naming the
file before any training starts; a problem with one line (wrong number of fields, a label that is not
a label) skips that line, is counted in the `ReadSummary` and logged with its file and line number,
so a few bad rows in a large file never stop a run mid-epoch and never pass unnoticed.

Lines are split on tabs only, with no quote handling (csv's QUOTE_NONE, as NeMo's and Hugging
Face's GLUE readers do): GLUE sentences contain unbalanced quotes, which a CSV reader would use to
swallow the following lines.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from nmod.core.errors import DataFormatError  # re-exported: the readers' errors derive from it
from nmod.log import get_logger

__all__ = ["DataFormatError", "ReadSummary", "read_tsv_lines"]

logger = get_logger(__name__)

MAX_LOGGED_WARNINGS = 10


@dataclass
class ReadSummary:
    """What reading a file found: rows kept, lines skipped and why (`warnings`, one per problem)."""

    path: str
    rows: int = 0  # data lines seen (header and blank lines excluded)
    kept: int = 0
    header: str | None = None
    blank_lines: int = 0
    skipped_lines: list = field(default_factory=list)  # 1-based line numbers
    warnings: list = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.skipped_lines)

    def warn(self, line: int, message: str, skip: bool = True) -> None:
        """Count a problem at `line`; the first few are logged, all are kept in `warnings`."""
        if skip:
            self.skipped_lines.append(line)
        self.warnings.append(f"{self.path}:{line}: {message}")
        if len(self.warnings) <= MAX_LOGGED_WARNINGS:
            logger.warning("%s", self.warnings[-1])
        elif len(self.warnings) == MAX_LOGGED_WARNINGS + 1:
            logger.warning("%s: more problems; only the first %d are logged (see the read summary)",
                           self.path, MAX_LOGGED_WARNINGS)

    def finish(self, kept: int, error: type[Exception], usable: str, nothing_else: str = "none",
               source: str | Path | None = None, log: bool | None = None) -> None:
        """Close the read with ``kept`` rows. None kept is ``error``: ``source`` (default: the file) has no
        usable ``usable``, with the first problem (``nothing_else`` when there was none). Else one summary
        line is logged when ``log`` (default: when anything was skipped or blank)."""
        self.kept = kept
        if not kept:
            raise error(f"{source or self.path} has no usable {usable} ({self}); first problem: "
                        f"{self.warnings[0] if self.warnings else nothing_else}")
        if (self.warnings or self.blank_lines) if log is None else log:
            logger.warning("%s", self)

    def __str__(self) -> str:
        s = f"{self.path}: kept {self.kept} of {self.rows} rows, skipped {self.skipped} malformed"
        if self.blank_lines:
            s += f", ignored {self.blank_lines} blank lines"
        return s


def read_tsv_lines(path: str | Path, what: str) -> tuple[list[str], str]:
    """The lines of a UTF-8 text file (a leading BOM dropped, `\\r\\n` accepted) and its SHA-256.

    `what` names the file's role in error messages ("GLUE sst-2 train file").
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as e:  # a directory, no permission, ...
        raise DataFormatError(f"{what} {path} cannot be read: {e.strerror or e}") from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataFormatError(f"{path}:{line}: not UTF-8 text (byte {e.start}: {e.reason}); {what} must be "
                              f"UTF-8 TSV") from None
    if not text.strip():
        raise DataFormatError(f"{what} {path} is empty")
    lines = text.split("\n")  # not splitlines(): it would also split on \x0b, \x1c, \u2028 inside text
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines], digest
