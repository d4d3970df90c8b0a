"""The Figure class layerscope.viz draws on: matplotlib's own, plus a PNG for Jupyter.

viz builds figures without pyplot (no window, no global state), and IPython only knows how to
show a matplotlib figure once pyplot or ``%matplotlib inline`` registered its formatter, so a
returned figure printed as ``<Figure size 880x921 with 64 Axes>``. :class:`NotebookFigure`
answers IPython's ``_repr_png_`` itself: the figure appears at its exact pixel size in any
notebook. Where the inline backend is active, its formatter takes precedence (one image).
Importing this module imports matplotlib; :func:`layerscope.viz.figure.new_figure` does so
only after checking that matplotlib is installed.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

__all__ = ["NotebookFigure"]


class NotebookFigure(Figure):  # type: ignore[misc, unused-ignore]  # Figure is Any without matplotlib
    """A matplotlib :class:`~matplotlib.figure.Figure` that Jupyter shows as a PNG."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=self.dpi)
        return buffer.getvalue()
