"""The drawn test set: digits drawn with the mouse on the real app's canvas, kept as a fixture.

    python -m tests.browser.drawn_set             # draws them all (~20 min on 2 cores), writes the file
    python -m tests.browser.drawn_set --preview /tmp/drawn.png   # the paths drawn with PIL, no browser

Hand-made paths of many styles (below: single-stroke loops that overshoot or
cross their start, two-stroke 4s and 5s, open and closed 4s, crossed 7s,
European 1s, ...), each drawn in several variants: size, place, slant, turn,
stretch, a shaky hand and three pen widths. Each is drawn on /draw in
Chromium; the canvas's own pixels (the PNG the component hands to Python) go
through ``preprocess.to_mnist`` as the app does, checked against the 28 × 28
picture the page shows. The result, ``model_zoo/drawn_set.npz``, is never
trained on; ``scripts.evaluate`` and the Zoo page report every model's
accuracy on it.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from model_zoo import evaluation, preprocess

from .conftest import CHROMIUM, CHROMIUM_FLAGS, VIEWPORT, clear, draw_and_wait, open_app, running_app, set_pen_width
from .strokes import CANVAS, DIGITS, Sample, render

# More ways of writing each digit, in the 60 × 100 box of strokes.DIGITS (x right, y down).
# A name's first character is the digit; "over" marks a loop drawn in one stroke whose
# end runs past its start (or crosses the line it started on).
SHAPES: dict[str, list] = {
    "0_over": [
        [
            [
                (38, 2),
                (20, 6),
                (6, 30),
                (6, 68),
                (20, 94),
                (40, 96),
                (54, 72),
                (56, 38),
                (48, 12),
                (34, 2),
                (18, 4),
                (8, 16),
                (5, 28),
            ]
        ]
    ],
    "0_over_cw": [
        [
            [
                (20, 4),
                (40, 4),
                (54, 28),
                (56, 66),
                (42, 94),
                (22, 96),
                (6, 72),
                (4, 36),
                (12, 12),
                (28, 2),
                (44, 4),
                (54, 16),
                (58, 30),
            ]
        ]
    ],
    "0_over_cross": [
        [
            [
                (42, 14),
                (30, 0),
                (12, 10),
                (4, 40),
                (8, 76),
                (26, 98),
                (46, 88),
                (56, 56),
                (52, 22),
                (36, 4),
                (22, -4),
                (12, -8),
            ]
        ]
    ],
    "0_over_in": [
        [
            [
                (34, 2),
                (16, 8),
                (5, 36),
                (6, 70),
                (20, 94),
                (40, 96),
                (54, 72),
                (56, 38),
                (46, 12),
                (36, 10),
                (24, 16),
                (16, 26),
            ]
        ]
    ],
    "0_over_curl": [
        [
            [
                (30, 6),
                (14, 14),
                (5, 40),
                (8, 74),
                (24, 96),
                (42, 94),
                (55, 68),
                (55, 34),
                (46, 12),
                (32, 2),
                (20, 6),
                (22, 20),
                (36, 22),
                (44, 10),
            ]
        ]
    ],
    "0_over_top": [
        [
            [
                (24, 16),
                (30, 2),
                (44, 6),
                (54, 30),
                (54, 70),
                (40, 96),
                (20, 96),
                (6, 72),
                (4, 36),
                (12, 10),
                (28, -4),
                (44, -6),
            ]
        ]
    ],
    "0_over_low": [
        [
            [
                (30, 96),
                (10, 84),
                (4, 50),
                (14, 12),
                (32, 2),
                (50, 14),
                (56, 50),
                (48, 86),
                (30, 98),
                (14, 92),
                (6, 80),
                (4, 70),
            ]
        ]
    ],
    "0_narrow": [[[(30, 2), (14, 20), (10, 50), (14, 82), (30, 98), (44, 82), (48, 50), (44, 18), (30, 2)]]],
    "1_euro": [[[(10, 30), (38, 0)], [(38, 0), (30, 100)]]],
    "1_euro_base": [[[(14, 24), (34, 0)], [(34, 0), (34, 98)]], [[(14, 100), (54, 100)]]],
    "1_straight": [[[(30, 0), (30, 100)]]],
    "2_z": [[[(4, 10), (30, 0), (52, 12), (46, 40)], [(46, 40), (4, 98)], [(4, 98), (60, 96)]]],
    "2_curl": [[[(8, 22), (24, 2), (46, 4), (54, 24), (40, 52), (14, 84), (4, 98), (30, 90), (58, 98)]]],
    "3_two": [
        [[(6, 10), (28, 0), (50, 10), (50, 32), (26, 46)]],
        [[(24, 46), (50, 58), (56, 80), (40, 98), (18, 98), (2, 86)]],
    ],
    "3_round": [[[(4, 18), (24, 0), (48, 6), (52, 26), (30, 46), (54, 62), (56, 86), (34, 100), (10, 94), (2, 80)]]],
    "4_open_two": [[[(8, 0), (4, 56)], [(4, 56), (60, 56)]], [[(46, 20), (44, 100)]]],
    "4_cross": [[[(30, 0), (2, 60)], [(2, 60), (60, 60)]], [[(46, 0), (44, 100)]]],
    "4_closed_two": [[[(40, 0), (2, 62)], [(2, 62), (60, 62)]], [[(40, 0), (40, 100)]]],
    "4_open_one": [[[(10, 0), (6, 54)], [(6, 54), (50, 54)]], [[(48, 10), (48, 100)]]],
    "5_flag_first": [
        [[(58, 2), (12, 2)]],
        [[(12, 2), (8, 44)], [(8, 44), (28, 36), (50, 44), (58, 66), (50, 88), (28, 100), (4, 92)]],
    ],
    "5_round": [
        [[(14, 0), (10, 48)], [(10, 48), (34, 40), (56, 54), (58, 80), (40, 100), (16, 98), (2, 86)]],
        [[(14, 0), (54, 2)]],
    ],
    "5_sharp": [
        [[(10, 4), (6, 44)], [(6, 44), (44, 44), (56, 62), (52, 88), (30, 100), (4, 94)]],
        [[(10, 4), (58, 4)]],
    ],
    "6_over": [
        [
            [
                (50, 2),
                (30, 4),
                (12, 24),
                (4, 56),
                (10, 86),
                (30, 98),
                (50, 86),
                (52, 64),
                (34, 52),
                (12, 58),
                (2, 72),
                (-4, 80),
            ]
        ]
    ],
    "6_over_in": [
        [[(46, 0), (24, 16), (8, 46), (6, 78), (22, 98), (44, 94), (54, 72), (42, 52), (20, 54), (10, 66), (12, 78)]]
    ],
    "6_over_curl": [
        [
            [
                (50, 2),
                (30, 6),
                (12, 28),
                (4, 60),
                (12, 88),
                (32, 98),
                (50, 86),
                (50, 62),
                (32, 52),
                (16, 58),
                (12, 72),
                (24, 78),
                (30, 64),
            ]
        ]
    ],
    "6_over_cross": [
        [
            [
                (54, 6),
                (34, 0),
                (14, 20),
                (6, 56),
                (12, 88),
                (32, 100),
                (52, 86),
                (52, 62),
                (32, 50),
                (14, 56),
                (6, 68),
                (2, 88),
            ]
        ]
    ],
    "7_cross": [[[(2, 4), (58, 4)], [(58, 4), (36, 52), (22, 100)]], [[(16, 50), (56, 50)]]],
    "7_cross_short": [[[(4, 8), (56, 2)], [(56, 2), (40, 50), (30, 100)]], [[(28, 54), (52, 50)]]],
    "7_curve": [[[(4, 6), (58, 6)], [(58, 6), (44, 34), (32, 66), (28, 100)]]],
    "8_cross": [
        [
            [
                (54, 10),
                (32, 0),
                (10, 10),
                (12, 32),
                (50, 66),
                (54, 88),
                (32, 100),
                (8, 88),
                (10, 64),
                (50, 32),
                (54, 10),
                (40, 0),
            ]
        ]
    ],
    "8_s_line": [
        [[(52, 14), (30, 0), (8, 12), (14, 34), (44, 60), (50, 86), (28, 100), (8, 88), (10, 70)], [(10, 70), (52, 16)]]
    ],
    "9_over": [
        [
            [(54, 18), (38, 2), (14, 6), (4, 26), (16, 42), (38, 40), (54, 24), (56, 6), (52, 0)],
            [(52, 0), (52, 50), (48, 100)],
        ]
    ],
    "9_over_cross": [
        [[(60, 30), (40, 40), (16, 38), (4, 22), (14, 4), (36, 0), (52, 10), (54, 30)], [(54, 30), (50, 64), (46, 100)]]
    ],
    "9_over_lead": [
        [[(40, 26), (52, 6), (34, 0), (12, 6), (6, 26), (18, 40), (40, 38), (54, 20)], [(54, 20), (52, 60), (50, 100)]]
    ],
    "9_over_curl": [
        [
            [
                (44, 18),
                (30, 24),
                (24, 14),
                (36, 2),
                (52, 10),
                (50, 30),
                (30, 42),
                (10, 36),
                (6, 18),
                (20, 2),
                (40, 0),
                (54, 10),
            ],
            [(54, 10), (52, 56), (48, 100)],
        ]
    ],
    "9_two": [[[(52, 12), (32, 0), (10, 8), (6, 28), (22, 42), (44, 36), (52, 14)]], [[(52, 6), (52, 100)]]],
}
# From strokes.DIGITS: the styles the browser tests draw, reused here.
REUSED = [
    "0",
    "0_open",
    "1",
    "1_flag",
    "1_base",
    "2",
    "2_loop",
    "3",
    "3_flat",
    "4",
    "4_closed",
    "5",
    "5_one",
    "6",
    "6_straight",
    "7",
    "7_bar",
    "7_hook",
    "8",
    "8_two",
    "9",
    "9_curl",
]
OVERSHOOT = [name for name in SHAPES if "_over" in name]
VARIANTS = 6  # drawings of each shape; 16 of each overshooting one (the targets count them)
OVERSHOOT_VARIANTS = 16
PENS = (12, 8, 22)  # the default pen first; a share of drawings with a finer and a fatter one
SEED = 12  # the variants' sizes, places and hands
FIXTURE = evaluation.DRAWN_SET


@dataclass(frozen=True)
class Drawing(Sample):
    """A Sample whose shape may come from SHAPES, drawn with a given pen."""

    pen: int = 12
    number: int = 0  # which variant of its shape

    @property
    def id(self) -> str:
        return f"{self.shape}#{self.number}-pen{self.pen}"

    def outline(self) -> list:
        return DIGITS[self.shape] if self.shape in DIGITS else SHAPES[self.shape]


def drawings() -> list[Drawing]:
    """Every drawing of the set, in a fixed order (grouped by pen: one slider move per group)."""
    out = []
    for shape in list(SHAPES) + REUSED:
        rng = np.random.default_rng([SEED, zlib.crc32(shape.encode())])  # new shapes leave others be
        for number in range(OVERSHOOT_VARIANTS if shape in OVERSHOOT else VARIANTS):
            height = float(rng.uniform(70, 230))
            centre = tuple(float(c) for c in rng.uniform(0.2, 0.8, 2) * CANVAS)
            pen = PENS[0] if number % 4 else PENS[1 + (number // 4) % 2]
            if height < 110 and pen > 12:  # a fat pen fills a small digit's loops (ui/canvas.py)
                pen = PENS[1]
            drawing = Drawing(
                shape,
                height,
                centre,
                "random",
                slant=float(rng.uniform(-0.2, 0.3)),
                wobble=float(rng.uniform(0, 5)),
                turn=float(rng.uniform(-12, 12)),
                aspect=float(rng.uniform(0.8, 1.25)),
                pen=pen,
                number=number,
            )
            out.append(_inside_canvas(drawing))
    return sorted(out, key=lambda d: PENS.index(d.pen))


def _inside_canvas(drawing: Drawing, margin: float = 8) -> Drawing:
    """The drawing moved (and shrunk if need be) so that every stroke stays on the canvas."""
    points = np.concatenate(drawing.points())
    low, high = points.min(axis=0), points.max(axis=0)
    room = CANVAS - 2 * margin - drawing.pen
    if (high - low).max() > room:
        drawing = replace(drawing, height=drawing.height * room / (high - low).max())
        points = np.concatenate(drawing.points())
        low, high = points.min(axis=0), points.max(axis=0)
    edge = margin + drawing.pen / 2
    shift = np.maximum(edge - low, 0) - np.maximum(high - (CANVAS - edge), 0)
    return replace(drawing, centre=tuple(float(c) for c in np.asarray(drawing.centre) + shift))


def _canvas_pixels(page: Page) -> np.ndarray:
    """The drawing as the component hands it to Python: (280, 280, 4) uint8 RGBA."""
    url = page.locator("canvas.dc-canvas.lower-canvas").first.evaluate("c => c.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def _shown_image(page: Page, app_url: str) -> np.ndarray:
    """The 28 × 28 picture the page shows (a JPEG of it enlarged 5 ×), averaged back to 28 × 28."""
    src = page.get_by_test_id("stImage").locator("img").get_attribute("src")
    body = page.request.get(src if src.startswith("http") else app_url + src).body()
    shown = np.asarray(Image.open(io.BytesIO(body)).convert("L"), np.float32) / 255
    return shown.reshape(28, shown.shape[0] // 28, 28, shown.shape[1] // 28).mean(axis=(1, 3))


def draw_all(items: list[Drawing]) -> np.ndarray:
    """Draw each item on /draw in Chromium: (N, 28, 28) uint8, what the app made of each."""
    images = np.zeros((len(items), 28, 28), np.uint8)
    with (
        running_app(Path("/tmp/drawn_set_user"), Path("/tmp/drawn_set_streamlit.log")) as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_app(page, url, "draw?model=cnn")
        pen = 12
        for i, item in enumerate(items):
            if item.pen != pen:
                set_pen_width(page, item.pen)
                pen = item.pen
            strokes = item.points()
            draw_and_wait(page, strokes, f"cnn read your drawing ({len(strokes)} stroke")
            seen = preprocess.to_mnist(_canvas_pixels(page))
            difference = float(np.abs(seen - _shown_image(page, url)).max())
            if difference > 0.05:  # JPEG noise is ~0.005 after averaging
                sys.exit(
                    f"{item.id}: the canvas's pixels give another image than the page shows "
                    f"(differs by {difference:.3f}): is canvas.dc-canvas.lower-canvas still the drawing?"
                )
            images[i] = np.rint(seen * 255)
            clear(page)
            print(f"{i + 1}/{len(items)} {item.id}", flush=True)
        browser.close()
    return images


def preview(items: list[Drawing], path: Path, columns: int = 24) -> None:
    """The paths drawn with PIL (no browser), to look at the shapes before drawing them."""
    tiles = [np.asarray(Image.fromarray(render(item, item.pen)[..., 0]).resize((70, 70), Image.BOX)) for item in items]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [
        np.concatenate([np.pad(t, 1, constant_values=128) for t in tiles[r : r + columns]], 1)
        for r in range(0, len(tiles), columns)
    ]
    Image.fromarray(np.concatenate(rows, 0)).save(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preview", type=Path, help="only draw the paths with PIL into this PNG")
    args = parser.parse_args(argv)
    items = drawings()
    if args.preview:
        preview(items, args.preview)
        return
    images = draw_all(items)
    np.savez_compressed(
        FIXTURE,
        x=images,
        y=np.array([int(d.digit) for d in items], np.uint8),
        shape=np.array([d.shape for d in items]),
        pen=np.array([d.pen for d in items]),
        id=np.array([d.id for d in items]),
        overshoot=np.array([d.shape in OVERSHOOT for d in items]),
    )
    print(f"{len(items)} drawings → {FIXTURE}")


if __name__ == "__main__":
    main()
