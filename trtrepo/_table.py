"""Aligned plain-text tables: every report's human form (``table()``) is rendered here."""

from __future__ import annotations

from collections.abc import Sequence


def render(header: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = (),
           rule: bool = True) -> str:
    """Columns padded to their widest cell, two spaces apart; trailing blanks stripped.

    Args:
        header: Column titles.
        rows: Cells (``str()`` of each is shown).
        right: Indices of right-aligned columns (numbers).
        rule: Put a line of dashes under the header.
    """
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    aligned = set(right)

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in aligned else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    lines = [line(r) for r in cells]
    if rule:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
