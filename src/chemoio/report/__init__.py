"""Plots and a self-contained HTML report for virtual-trial results.

The functions work on plain arrays and do not depend on the model:

- :func:`spider_plot`, :func:`waterfall_plot`, :func:`swimmer_plot` - tumour response;
- :func:`band_plot` - median and 90 % band of model states over time;
- :func:`km_plot` (with :func:`kaplan_meier`, :func:`numbers_at_risk`) - survival;
- :func:`forest_plot` - subgroup hazard ratios, simulated beside published;
- :class:`Report` - an HTML page with headings, tables and embedded figures.

All output is research output of an in-silico model, not medical advice.
"""

from chemoio.report.html import DISCLAIMER, Report
from chemoio.report.plots import (
    BOR_COLORS,
    FOOTER_TEXT,
    PALETTE,
    band_plot,
    forest_plot,
    kaplan_meier,
    km_plot,
    numbers_at_risk,
    save_figure,
    spider_plot,
    swimmer_plot,
    waterfall_plot,
)

__all__ = [
    "BOR_COLORS",
    "DISCLAIMER",
    "FOOTER_TEXT",
    "PALETTE",
    "Report",
    "band_plot",
    "forest_plot",
    "kaplan_meier",
    "km_plot",
    "numbers_at_risk",
    "save_figure",
    "spider_plot",
    "swimmer_plot",
    "waterfall_plot",
]
