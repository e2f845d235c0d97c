"""The drawn test set still is what the app makes of its drawings.

model_zoo/drawn_set.npz was drawn once by ``python -m tests.browser.drawn_set``
(~20 min). Redrawing a few of its drawings here catches a change to the
canvas or to preprocessing that would leave the committed set describing an
app that no longer exists.
"""

from __future__ import annotations

import numpy as np

from model_zoo import evaluation, preprocess

from .conftest import clear, draw_and_wait, open_app, set_pen_width
from .drawn_set import _canvas_pixels, drawings

# A few of each pen, overshooting loops and two-stroke digits among them.
CHECKED = (0, 1, 150, 300, 400, 470)


def test_drawings_still_give_the_images_in_the_drawn_set(page, app_url):
    drawn = evaluation.drawn_set()
    items = drawings()
    assert len(items) == len(drawn.x), "drawn_set.py changed: redraw with python -m tests.browser.drawn_set"
    open_app(page, app_url, "draw?model=cnn")
    pen = 12
    for index in CHECKED:
        item = items[index]
        assert item.shape == drawn.shape[index]
        if item.pen != pen:
            set_pen_width(page, item.pen)
            pen = item.pen
        stored = drawn.x[index].astype(np.float64)
        # A change to the canvas or to preprocessing gives another image every time; a
        # drawing that lost mouse events on a loaded machine (seen once in CI) does not.
        # So a drawing that differs is drawn once more before the test fails.
        differences = []
        for _ in range(2):
            differences.append(_difference_when_drawn(page, item, stored))
            clear(page)
            if differences[-1] < 2:
                break
        assert differences[-1] < 2, (
            f"{item.id} now gives another image than model_zoo/drawn_set.npz holds "
            f"(mean difference {', then '.join(f'{d:.1f}' for d in differences)} of 255): "
            "redraw the set with python -m tests.browser.drawn_set"
        )


def _difference_when_drawn(page, item, stored: np.ndarray) -> float:
    """Draw `item` on the page's canvas: the mean absolute difference (0-255) from `stored`."""
    strokes = item.points()
    draw_and_wait(page, strokes, f"cnn read your drawing ({len(strokes)} stroke")
    now = np.rint(preprocess.to_mnist(_canvas_pixels(page)) * 255)
    return float(np.abs(now - stored).mean())
