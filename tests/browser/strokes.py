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
    "0": [[[(32, 2), (14, 10), (4, 35), (5, 65), (18, 92), (36, 97), (52, 80), (58, 50), (54, 20), (40, 4), (26, 6)]]],
    "1": [[[(36, 0), (31, 50), (26, 100)]]],
    "1_flag": [[[(16, 20), (38, 0)], [(38, 0), (33, 50), (29, 100)]]],
    "2": [
        [[(6, 24), (16, 6), (34, 0), (52, 10), (54, 30), (42, 52), (20, 76), (3, 97)], [(3, 97), (30, 95), (60, 97)]]
    ],
    "3": [
        [
            [(6, 12), (24, 1), (46, 4), (54, 20), (44, 38), (24, 47)],
            [(24, 47), (46, 54), (58, 72), (50, 92), (28, 100), (4, 90)],
        ]
    ],
    "4": [[[(26, 0), (3, 62)], [(3, 62), (60, 61)]], [[(46, 10), (45, 100)]]],
    "5": [
        [[(12, 2), (8, 46)], [(8, 46), (28, 38), (48, 44), (58, 63), (54, 84), (36, 98), (14, 98), (2, 88)]],
        [[(12, 2), (57, 0)]],
    ],
    "6": [
        [
            [
                (50, 4),
                (34, 0),
                (16, 14),
                (4, 45),
                (4, 75),
                (16, 96),
                (36, 98),
                (52, 84),
                (52, 64),
                (36, 52),
                (16, 56),
                (6, 70),
            ]
        ]
    ],
    "7": [[[(2, 6), (60, 2)], [(60, 2), (38, 50), (20, 100)]]],
    "7_bar": [[[(2, 6), (60, 2)], [(60, 2), (38, 50), (20, 100)]], [[(24, 52), (54, 50)]]],
    "8": [
        [
            [
                (50, 12),
                (32, 0),
                (12, 8),
                (10, 26),
                (30, 46),
                (52, 64),
                (54, 86),
                (34, 100),
                (12, 92),
                (8, 72),
                (26, 50),
                (46, 32),
                (50, 14),
                (40, 3),
            ]
        ]
    ],
    "9": [
        [[(52, 14), (36, 0), (14, 6), (6, 24), (16, 40), (36, 40), (52, 26), (54, 8)], [(54, 8), (52, 50), (48, 100)]]
    ],
    # Other ways people write them.
    "0_open": [[[(40, 8), (22, 4), (8, 20), (4, 50), (10, 80), (28, 97), (46, 90), (56, 62), (56, 32), (48, 14)]]],
    "1_base": [[[(18, 18), (36, 0)], [(36, 0), (34, 100)]], [[(16, 100), (54, 100)]]],
    "2_loop": [
        [
            [
                (4, 24),
                (18, 4),
                (40, 2),
                (54, 18),
                (50, 40),
                (30, 64),
                (10, 88),
                (8, 98),
                (18, 96),
                (24, 88),
                (40, 94),
                (60, 98),
            ]
        ]
    ],
    "3_flat": [[[(4, 2), (56, 2)], [(56, 2), (26, 40)], [(26, 40), (50, 50), (58, 72), (48, 92), (26, 100), (4, 90)]]],
    "4_closed": [[[(44, 100), (44, 0)], [(44, 0), (2, 64)], [(2, 64), (60, 64)]]],
    "5_one": [
        [[(56, 2), (12, 2)], [(12, 2), (8, 44)], [(8, 44), (30, 38), (50, 46), (58, 66), (52, 86), (32, 98), (4, 90)]]
    ],
    "6_straight": [[[(46, 0), (24, 30), (8, 62), (12, 88), (30, 98), (50, 86), (50, 64), (32, 54), (12, 62)]]],
    "7_hook": [[[(2, 16), (4, 4)], [(4, 4), (58, 4)], [(58, 4), (46, 30), (34, 60), (30, 100)]]],
    "8_two": [
        [[(30, 0), (10, 12), (12, 34), (30, 44), (48, 34), (50, 12), (30, 0)]],
        [[(30, 44), (8, 60), (6, 84), (28, 100), (52, 90), (54, 62), (30, 44)]],
    ],
    "9_curl": [
        [
            [(50, 16), (34, 2), (12, 8), (6, 26), (18, 40), (38, 38), (52, 24), (54, 8)],
            [(54, 8), (52, 50), (44, 82), (28, 100), (10, 94)],
        ]
    ],
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
    turn: float = 0.0  # rotation, degrees clockwise
    aspect: float = 1.0  # width stretch: < 1 narrow, > 1 wide

    @property
    def digit(self) -> str:
        return self.shape[0]

    @property
    def id(self) -> str:
        extra = (f"-slant{self.slant:g}" if self.slant else "") + ("-wobbly" if self.wobble else "")
        extra += (f"-turn{self.turn:g}" if self.turn else "") + (f"-aspect{self.aspect:g}" if self.aspect != 1 else "")
        return f"{self.shape}-{int(self.height)}px-{self.where}{extra}"

    def points(self, step: float = 8.0) -> list[list[Point]]:
        """Each stroke as a mouse path in canvas pixels, a point every ~`step` px."""
        scale = self.height / BOX_HEIGHT
        cx, cy = self.centre
        rng = np.random.default_rng(sum(map(ord, self.id)))  # the same wobble every run
        moved: dict[Point, Point] = {}  # a corner shared by two runs moves once
        strokes = []
        for stroke in self.outline():
            path: list[Point] = []
            for run in stroke:
                run = [moved.setdefault(p, tuple(p + rng.uniform(-self.wobble, self.wobble, 2))) for p in run]
                curve = _catmull_rom(run, step / scale)
                path.extend(curve if not path else curve[1:])
            strokes.append([self._place(x, y, scale) for x, y in path])
        return strokes

    def outline(self) -> list:
        """The shape's strokes, each a list of runs of box points (see DIGITS)."""
        return DIGITS[self.shape]

    def _place(self, x: float, y: float, scale: float) -> Point:
        """Box units → canvas pixels: stretch, slant, turn about the middle, scale, move."""
        dx = (x - BOX_WIDTH / 2) * self.aspect + self.slant * (BOX_HEIGHT / 2 - y)
        dy = y - BOX_HEIGHT / 2
        angle = np.radians(self.turn)
        dx, dy = dx * np.cos(angle) - dy * np.sin(angle), dx * np.sin(angle) + dy * np.cos(angle)
        return (self.centre[0] + dx * scale, self.centre[1] + dy * scale)


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
            q = 0.5 * (
                (2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
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
NATURAL = [Sample(shape) for shape in DIGITS if "_" not in shape or shape in ("1_flag", "7_bar")]
LARGE = [Sample(s, 230, slant=0.2, wobble=3) for s in ("0", "2", "3", "5", "6", "8")]
SMALL = [Sample(s, 80, wobble=4) for s in ("1", "4", "7", "9")]
# Tiny digits with loops, which a fat pen fills in.
TINY = [Sample(s, 50, wobble=2) for s in ("0", "2", "3", "6", "8", "9")]
CORNERS = [
    Sample("2", 80, _corner("top-left", 80), "top-left"),
    Sample("3", 80, _corner("bottom-right", 80), "bottom-right"),
    Sample("5", 90, _corner("top-right", 90), "top-right"),
    Sample("7_bar", 90, _corner("bottom-left", 90), "bottom-left"),
    Sample("0", 120, _corner("top-right", 120), "top-right"),
    Sample("4", 120, _corner("bottom-left", 120), "bottom-left"),
]
SAMPLES = NATURAL + LARGE + SMALL + TINY + CORNERS

# A less careful hand, for measuring (not asserted): other ways of writing each
# digit, shakier, turned, squeezed or stretched, at other sizes and places.
SLOPPY = [
    Sample("0_open", 160, (120, 150), "left", wobble=6, turn=-10, aspect=1.2),
    Sample("1_base", 150, (160, 130), "right", wobble=5, turn=12),
    Sample("1", 170, (130, 140), "centre", wobble=6, turn=-15),
    Sample("2_loop", 170, (140, 150), "centre", wobble=6, turn=8, aspect=0.85),
    Sample("2", 120, (90, 100), "top-left", wobble=7, slant=-0.15, aspect=1.3),
    Sample("3_flat", 160, (150, 140), "centre", wobble=6, turn=-8),
    Sample("3", 130, (180, 170), "bottom-right", wobble=7, slant=0.3, aspect=0.8),
    Sample("4_closed", 170, (140, 140), "centre", wobble=6, turn=10),
    Sample("4", 140, (110, 160), "left", wobble=7, slant=0.25, aspect=1.25),
    Sample("5_one", 160, (150, 130), "centre", wobble=6, turn=-10),
    Sample("5", 120, (180, 100), "top-right", wobble=7, aspect=1.3),
    Sample("6_straight", 170, (130, 140), "centre", wobble=6, turn=12),
    Sample("6", 130, (100, 170), "bottom-left", wobble=7, slant=0.3, aspect=0.8),
    Sample("7_hook", 170, (150, 140), "centre", wobble=6, turn=-8),
    Sample("7_bar", 120, (170, 180), "bottom-right", wobble=7, slant=0.3, aspect=1.2),
    Sample("8_two", 170, (140, 140), "centre", wobble=5, turn=10, aspect=0.9),
    Sample("8", 130, (100, 110), "top-left", wobble=7, slant=0.25, aspect=1.2),
    Sample("9_curl", 170, (140, 140), "centre", wobble=6, turn=-10),
    Sample("9", 130, (180, 160), "right", wobble=7, slant=0.3, aspect=0.85),
    Sample("0", 110, (140, 140), "centre", wobble=8, aspect=0.7),
]
