"""A self-contained HTML report: one file, inline CSS, figures as base64 data URIs.

The page needs no network, no JavaScript and no side files, so it can be mailed or archived
as is. Every string a caller passes in is HTML-escaped. The top of the page always carries a
notice that the content is research output of an in-silico model.

Example
-------
>>> rep = Report("Virtual trial")                                 # doctest: +SKIP
>>> rep.add_heading("Overall survival", 2)                        # doctest: +SKIP
>>> rep.add_figure(km_plot({...}), "Kaplan-Meier estimate")       # doctest: +SKIP
>>> rep.write("out/report.html")                                  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from chemoio.errors import ChemoioInputError

__all__ = ["DISCLAIMER", "Report"]

#: Notice printed at the top of every report.
DISCLAIMER = (
    "Research output of an in-silico model. "
    "Not medical advice; not for decisions about any patient."
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d1d1f; background: #ffffff; margin: 0; line-height: 1.5; }
main { max-width: 980px; margin: 0 auto; padding: 1.2rem 1.5rem 3rem; }
.notice { background: #fff4e5; border: 1px solid #e69f00; border-left: 6px solid #e69f00;
          border-radius: 4px; padding: 0.7rem 1rem; margin: 0 0 1.5rem; font-size: 0.95rem; }
.notice strong { display: block; }
.notice .meta { color: #555; font-size: 0.85rem; margin-top: 0.25rem; }
h1 { font-size: 1.7rem; margin: 0.3rem 0 1rem; }
h2 { font-size: 1.35rem; margin: 2rem 0 0.6rem; border-bottom: 1px solid #e5e5e5;
     padding-bottom: 0.2rem; }
h3 { font-size: 1.12rem; margin: 1.5rem 0 0.5rem; }
h4, h5, h6 { font-size: 1rem; margin: 1.2rem 0 0.4rem; }
p { margin: 0.5rem 0 0.9rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1.4rem; font-size: 0.9rem; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 0.3rem 0.7rem; text-align: left;
         vertical-align: top; }
th { background: #f5f5f7; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.yes { color: #007a55; font-weight: 700; text-align: center; }
td.no { color: #c0392b; font-weight: 700; text-align: center; }
tbody tr:nth-child(even) { background: #fafafa; }
table.kv th { background: none; width: 14rem; }
figure { margin: 1rem 0 1.8rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9rem; margin-top: 0.3rem; }
footer { color: #777; font-size: 0.8rem; border-top: 1px solid #e5e5e5; margin-top: 2.5rem;
         padding-top: 0.6rem; }
"""


def _chemoio_version() -> str:
    """``chemoio.__version__`` when the package defines it, else ``"dev"``."""
    try:
        import chemoio

        version = getattr(chemoio, "__version__", None)
    except Exception:  # pragma: no cover - the package is importable wherever this runs
        version = None
    return str(version) if version else "dev"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float | np.floating) and math.isnan(value))
    except TypeError:  # pragma: no cover
        return False


def _format_cell(value: Any, float_format: str) -> tuple[str, str]:
    """HTML-escaped text and CSS class of one table cell."""
    if _is_missing(value):
        return "\u2014", ""
    if isinstance(value, bool | np.bool_):
        return ("yes" if value else "no"), ""
    if isinstance(value, Integral):
        return _esc(int(value)), "num"
    if isinstance(value, Real):
        return _esc(format(float(value), float_format)), "num"
    return _esc(value), ""


def _to_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, Mapping):
        return pd.DataFrame(dict(data))
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return pd.DataFrame(list(data))
    raise ChemoioInputError(
        "table", f"expected a DataFrame, a list of rows or a dict of columns, got {type(data)!r}"
    )


@dataclass
class _Figure:
    png: bytes
    caption: str | None


class Report:
    """Build an HTML report block by block, then :meth:`write` it as one self-contained file.

    Parameters
    ----------
    title:
        Page title and top heading.
    save_pngs_to:
        If set, every figure is also written as a PNG file into this folder when the report is
        written. A relative folder is taken relative to the HTML file's folder, so
        ``save_pngs_to="."`` puts the PNGs next to the HTML.
    generated_at:
        Timestamp printed in the notice; default is the time :meth:`to_html` runs (UTC).
    dpi:
        Resolution used when a matplotlib figure is rendered to PNG.
    """

    def __init__(
        self,
        title: str = "chemoio report",
        save_pngs_to: str | os.PathLike[str] | None = None,
        generated_at: datetime | None = None,
        dpi: int = 120,
    ) -> None:
        self.title = str(title)
        self.save_pngs_to = Path(save_pngs_to) if save_pngs_to is not None else None
        self.generated_at = generated_at
        self.dpi = int(dpi)
        self._blocks: list[str | _Figure] = []

    # ---- blocks ----------------------------------------------------------------------

    def add_heading(self, text: str, level: int = 2) -> Report:
        """Add a heading; ``level`` 1-6 (the page title is already level 1)."""
        if not isinstance(level, Integral) or not 1 <= int(level) <= 6:
            raise ChemoioInputError("level", f"heading level must be 1..6, got {level!r}")
        self._blocks.append(f"<h{int(level)}>{_esc(text)}</h{int(level)}>")
        return self

    def add_paragraph(self, text: str) -> Report:
        """Add a paragraph of plain text; blank lines start new paragraphs."""
        parts = [p.strip() for p in re.split(r"\n\s*\n", str(text)) if p.strip()]
        for part in parts:
            body = "<br>".join(_esc(line) for line in part.splitlines())
            self._blocks.append(f"<p>{body}</p>")
        return self

    def add_table(
        self,
        df_or_rows: Any,
        caption: str | None = None,
        highlight_column: str | None = None,
        *,
        index: bool | None = None,
        float_format: str = ".4g",
    ) -> Report:
        """Add a table from a DataFrame, a list of row dicts/tuples, or a dict of columns.

        Parameters
        ----------
        df_or_rows:
            The data. All cells and headers are HTML-escaped.
        caption:
            Caption shown above the table.
        highlight_column:
            Name of a boolean column (e.g. "within published CI") rendered as a green ✓ for
            True and a red ✗ for False.
        index:
            Show the DataFrame index as the first column; default: only when it is not the
            plain 0..n-1 range.
        float_format:
            Format spec for floating-point cells.
        """
        df = _to_frame(df_or_rows)
        if highlight_column is not None and highlight_column not in df.columns:
            raise ChemoioInputError(
                "highlight_column", f"{highlight_column!r} is not a column of the table"
            )
        if index is None:
            index = not isinstance(df.index, pd.RangeIndex) or df.index.name is not None
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{_esc(caption)}</caption>")
        head = ([_esc(df.index.name or "")] if index else []) + [_esc(c) for c in df.columns]
        out.append("<thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead>")
        out.append("<tbody>")
        for idx_value, row in zip(df.index, df.itertuples(index=False, name=None)):
            cells = []
            if index:
                cells.append(f"<th>{_esc(idx_value)}</th>")
            for col, value in zip(df.columns, row):
                highlight = col == highlight_column and not _is_missing(value)
                if highlight and (isinstance(value, bool | np.bool_) or value in (0, 1)):
                    word = "yes" if bool(value) else "no"
                    mark = "\u2713" if bool(value) else "\u2717"
                    attrs = f'class="{word}" title="{word}" aria-label="{word}"'
                    cells.append(f"<td {attrs}>{mark}</td>")
                    continue
                text, cls = _format_cell(value, float_format)
                cells.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
        self._blocks.append("\n".join(out))
        return self

    def add_figure(
        self, fig_or_png_path: Figure | str | os.PathLike[str], caption: str | None = None
    ) -> Report:
        """Add a matplotlib Figure or an existing PNG file, embedded as a data URI."""
        if isinstance(fig_or_png_path, Figure):
            buf = io.BytesIO()
            fig_or_png_path.savefig(buf, format="png", dpi=self.dpi, facecolor="white")
            png = buf.getvalue()
        elif isinstance(fig_or_png_path, str | os.PathLike):
            path = Path(fig_or_png_path)
            if not path.is_file():
                raise ChemoioInputError("figure", f"no such file: {path.name}")
            png = path.read_bytes()
            if not png.startswith(_PNG_SIGNATURE):
                raise ChemoioInputError("figure", f"{path.name} is not a PNG file")
        else:
            raise ChemoioInputError(
                "figure",
                f"expected a matplotlib Figure or a PNG path, got {type(fig_or_png_path)!r}",
            )
        self._blocks.append(_Figure(png=png, caption=caption))
        return self

    def add_key_values(self, items: Mapping[str, Any], caption: str | None = None) -> Report:
        """Add a two-column table of names and values (e.g. run settings)."""
        out = ['<table class="kv">']
        if caption:
            out.append(f"<caption>{_esc(caption)}</caption>")
        out.append("<tbody>")
        for key, value in items.items():
            text, _cls = _format_cell(value, ".4g")
            out.append(f"<tr><th>{_esc(key)}</th><td>{text}</td></tr>")
        out.append("</tbody></table>")
        self._blocks.append("\n".join(out))
        return self

    # ---- output ----------------------------------------------------------------------

    def to_html(self) -> str:
        """The complete page as a string."""
        when = self.generated_at or datetime.now(timezone.utc)
        if when.tzinfo is None:
            stamp = when.strftime("%Y-%m-%d %H:%M:%S")
        else:
            stamp = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        version = _chemoio_version()
        body: list[str] = [
            '<div class="notice" role="note">',
            f"<strong>{_esc(DISCLAIMER)}</strong>",
            f'<div class="meta">Generated at {_esc(stamp)} by chemoio {_esc(version)}</div>',
            "</div>",
            f"<h1>{_esc(self.title)}</h1>",
        ]
        n_fig = 0
        for block in self._blocks:
            if isinstance(block, _Figure):
                n_fig += 1
                data = base64.b64encode(block.png).decode("ascii")
                alt = _esc(block.caption or f"Figure {n_fig}")
                cap = (
                    f"<figcaption><b>Figure {n_fig}.</b> {_esc(block.caption)}</figcaption>"
                    if block.caption
                    else ""
                )
                body.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">{cap}</figure>'
                )
            else:
                body.append(block)
        body.append(
            f"<footer>chemoio {_esc(version)} \u2014 {_esc(DISCLAIMER)}</footer>"
        )
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="generator" content="chemoio">\n'
            f"<title>{_esc(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n"
            "<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the page (UTF-8) and, if ``save_pngs_to`` is set, the figures as PNGs.

        Parent folders are created. Returns the path of the HTML file.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.to_html(), encoding="utf-8")
        if self.save_pngs_to is not None:
            folder = self.save_pngs_to
            if not folder.is_absolute():
                folder = out.parent / folder
            folder.mkdir(parents=True, exist_ok=True)
            figures = [b for b in self._blocks if isinstance(b, _Figure)]
            for i, fig in enumerate(figures, start=1):
                (folder / f"{out.stem}_figure{i:02d}.png").write_bytes(fig.png)
        return out

    def __len__(self) -> int:
        return len(self._blocks)
