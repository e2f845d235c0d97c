"""Hand-made digits as pen strokes, placed on the canvas at a size and position.

Each digit is a list of strokes (pen down … pen up); a stroke is a list of
runs; a run is a list of control points in a 60 × 100 box (x right, y down).
A run is smoothed into a curve through its points (Catmull-Rom), and runs
meet in a sharp corner, the way a hand turns at the top of a 7. The shapes
follow how people write digits: a 4 drawn open with its upright as a second
stroke, a 5 with its flag added last, a 7 with or without a crossbar.

`Sample.points()` gives the mouse path in canvas pixels for the browser tests;
`render()` draws the same strokes with PIL, to check samples without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]
Run = list[Point]
Stroke = list[Run]

BOX_WIDTH, BOX_HEIGHT = 60.0, 100.0  # the frame the control points are written in
CANVAS = 280  # canvas side in pixels (the app's)

DIGITS: dict[str, list[Stroke]] = {
    "0": [[[(32, 2), (14, 10), (4, 35), (5, 65), (18, 92), (36, 97), (52, 80), (58, 50),
            (54, 20), (40, 4), (26, 6)]]],
    "1": [[[(36, 0), (31, 50), (26, 100)]]],
    "1_flag": [[[(16, 20), (38, 0)], [(38, 0), (33, 50), (29, 100)]]],
    "2": [[[(6, 24), (16, 6), (34, 0), (52, 10), (54, 30), (42, 52), (20, 76), (3, 97)],
           [(3, 97), (30, 95), (60, 97)]]],
    "3": [[[(6, 12), (24, 1), (46, 4), (54, 20), (44, 38), (24, 47)],
           [(24, 47), (46, 54), (58, 72), (50, 92), (28, 100), (4, 90)]]],
    "4": [[[(26, 0), (3, 62)], [(3, 62), (60, 61)]],
          [[(46, 10), (45, 100)]]],
    "5": [[[(12, 2), (8, 46)], [(8, 46), (28, 38), (48, 44), (58, 63), (54, 84), (36, 98),
                                 (14, 98), (2, 88)]],
          [[(12, 2), (57, 0)]]],
    "6": [[[(50, 4), (34, 0), (16, 14), (4, 45), (4, 75), (16, 96), (36, 98), (52, 84),
            (52, 64), (36, 52), (16, 56), (6, 70)]]],
    "7": [[[(2, 6), (60, 2)], [(60, 2), (38, 50), (20, 100)]]],
    "7_bar": [[[(2, 6), (60, 2)], [(60, 2), (38, 50), (20, 100)]],
              [[(24, 52), (54, 50)]]],
    "8": [[[(50, 12), (32, 0), (12, 8), (10, 26), (30, 46), (52, 64), (54, 86), (34, 100),
            (12, 92), (8, 72), (26, 50), (46, 32), (50, 14), (40, 3)]]],
    "9": [[[(52, 14), (36, 0), (14, 6), (6, 24), (16, 40), (36, 40), (52, 26), (54, 8)],
           [(54, 8), (52, 50), (48, 100)]]],
}


@dataclass(frozen=True)
class Sample:
    """One drawing: which digit, how tall (px), its centre on the canvas, its id."""

    shape: str  # a DIGITS key
    height: float = 190  # a natural size on a 280 px canvas
    centre: Point = (CANVAS / 2, CANVAS / 2)
    where: str = "centre"
    slant: float = 0.0  # shear: x moves right by slant × height above the middle
    wobble: float = 0.0  # a steady hand is 0; control points move up to this (box units)

    @property
    def digit(self) -> str:
        return self.shape[0]

    @property
    def id(self) -> str:
        extra = (f"-slant{self.slant:g}" if self.slant else "") + ("-wobbly" if self.wobble else "")
        return f"{self.shape}-{int(self.height)}px-{self.where}{extra}"

    def points(self, step: float = 8.0) -> list[list[Point]]:
        """Each stroke as a mouse path in canvas pixels, a point every ~`step` px."""
        scale = self.height / BOX_HEIGHT
        cx, cy = self.centre
        rng = np.random.default_rng(sum(map(ord, self.id)))  # the same wobble every run
        moved: dict[Point, Point] = {}  # a corner shared by two runs moves once
        strokes = []
        for stroke in DIGITS[self.shape]:
            path: list[Point] = []
            for run in stroke:
                run = [moved.setdefault(p, tuple(p + rng.uniform(-self.wobble, self.wobble, 2)))
                       for p in run]
                curve = _catmull_rom(run, step / scale)
                path.extend(curve if not path else curve[1:])
            strokes.append([
                (cx + (x - BOX_WIDTH / 2 + self.slant * (BOX_HEIGHT / 2 - y)) * scale,
                 cy + (y - BOX_HEIGHT / 2) * scale)
                for x, y in path])
        return strokes


def _catmull_rom(run: Run, step: float) -> list[Point]:
    """A smooth curve through every control point, sampled every ~`step` units."""
    p = np.asarray(run, dtype=float)
    if len(p) == 2:
        n = max(2, int(np.linalg.norm(p[1] - p[0]) / step) + 1)
        return [tuple(q) for q in np.linspace(p[0], p[1], n)]
    padded = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = [tuple(p[0])]
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1 : i + 3]
        n = max(2, int(np.linalg.norm(p2 - p1) / step) + 1)
        for t in np.linspace(0, 1, n)[1:]:
            q = 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                       + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
            out.append(tuple(q))
    return out


def render(sample: Sample, stroke_width: int) -> np.ndarray:
    """The sample drawn white on black like the canvas does: (280, 280, 4) uint8 RGBA."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 255))
    pen = ImageDraw.Draw(image)
    radius = stroke_width / 2
    for path in sample.points():
        pen.line(path, fill=(255, 255, 255, 255), width=stroke_width, joint="curve")
        for x, y in (path[0], path[-1]):  # round caps
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 255, 255, 255))
    return np.asarray(image)


def _corner(side: str, height: float, margin: float = 12) -> Point:
    """The centre that puts a digit of `height` in a canvas corner."""
    half_h, half_w = height / 2, height * BOX_WIDTH / BOX_HEIGHT / 2
    x = margin + half_w if "left" in side else CANVAS - margin - half_w
    y = margin + half_h if "top" in side else CANVAS - margin - half_h
    return (x, y)


# What the CNN must read on the Draw page: every digit at a natural size in the
# middle, big ones, small ones, and small ones pushed into the corners.
NATURAL = [Sample(shape) for shape in DIGITS]
LARGE = [Sample(s, 230, slant=0.2, wobble=3) for s in ("0", "2", "3", "5", "6", "8")]
SMALL = [Sample(s, 80, wobble=4) for s in ("1", "4", "7", "9")]
CORNERS = [
    Sample("2", 80, _corner("top-left", 80), "top-left"),
    Sample("3", 80, _corner("bottom-right", 80), "bottom-right"),
    Sample("5", 90, _corner("top-right", 90), "top-right"),
    Sample("7_bar", 90, _corner("bottom-left", 90), "bottom-left"),
    Sample("0", 120, _corner("top-right", 120), "top-right"),
    Sample("4", 120, _corner("bottom-left", 120), "bottom-left"),
]
SAMPLES = NATURAL + LARGE + SMALL + CORNERS
