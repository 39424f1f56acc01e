"""The one exception an import raises, and the collector that turns row problems into its message."""
import numpy as np

MAX_LISTED = 20


class ImportRejected(Exception):
    """The file was refused as a whole; nothing was written. The message is meant for the person importing."""


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_LISTED])
    more = len(rows) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


class Problems:
    """Row problems gathered across all checks, so one rejection reports every reason at once."""

    def __init__(self, path):
        self.path = path
        self._by_reason: dict[str, list[int]] = {}

    def add(self, mask_or_rows, reason: str) -> None:
        """mask_or_rows: a boolean mask over the data rows (0-based) or 0-based row indices."""
        arr = np.asarray(mask_or_rows)
        idx = np.flatnonzero(arr) if arr.dtype == bool else arr.astype(np.int64)
        if len(idx):
            self._by_reason.setdefault(reason, []).extend(int(i) + 1 for i in idx)

    def add_each(self, rows, reasons) -> None:
        """Per-row reasons (already specific, e.g. naming the bad value)."""
        for i, reason in zip(rows, reasons):
            self.add([i], reason)

    def __bool__(self) -> bool:
        return bool(self._by_reason)

    @property
    def rows(self) -> list[int]:
        return sorted({r for rows in self._by_reason.values() for r in rows})

    def message(self) -> str:
        rows = self.rows
        groups = sorted(self._by_reason.items(), key=lambda kv: min(kv[1]))
        lines = [f"{self.path}: {len(rows)} row(s) refused (rows counted from 1, the first data row; "
                 f"the whole file was rejected):"]
        for reason, rs in groups[:MAX_LISTED]:
            rs = sorted(set(rs))
            lines.append(f"  row{'s' if len(rs) > 1 else ''} {_rows_text(rs)}: {reason}")
        if len(groups) > MAX_LISTED:
            lines.append(f"  and {len(groups) - MAX_LISTED} more kinds of problem")
        return "\n".join(lines)

    def raise_if_any(self) -> None:
        if self:
            raise ImportRejected(self.message())
