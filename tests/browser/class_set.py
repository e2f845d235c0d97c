"""A class's own digits, drawn in the browser: the fixture of the Class page's numbers.

    python -m tests.browser.class_set      # draws them (~8 min on 2 cores), writes tests/fixtures/class_digits.npz

Not the drawn test set (``tests.browser.drawn_set``, never trained on): its 58
shapes drawn by a sloppier class, 5 times each, from other seeds: shakier
(control points moved up to 11 px of the 100 px box, against 5), turned up to
30° (against 12), slanted, squeezed or stretched more, with four pens (one,
16 px, that set never uses). Where the zoo reads the drawn set at 96–100 %,
it reads this class at 82–98 %: the handwriting a class's retraining is for. It is also
the drawn validation set that chose cnn_robust's pen finish (scripts.experiments.pen_finish_trial).
Each is drawn on
/draw in Chromium and kept as the 28 × 28 image the app made of it, in the
export format of ``model_zoo.class_digits`` (``x``, ``y`` uint8), which is how
the tests and ``scripts.experiments.class_finetune`` bring it into a class: by import.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from .drawn_set import REUSED, SHAPES, Drawing, _inside_canvas, draw_all
from .strokes import CANVAS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "class_digits.npz"
SEED = 2026  # not drawn_set's 12: other drawings of the same shapes
VARIANTS = 5
PENS = (12, 16, 8, 22)


def drawings() -> list[Drawing]:
    out = []
    for shape in list(SHAPES) + REUSED:
        rng = np.random.default_rng([SEED, zlib.crc32(shape.encode())])
        for number in range(VARIANTS):
            height = float(rng.uniform(80, 220))
            pen = PENS[number % len(PENS)]
            if height < 110 and pen > 12:  # a fat pen fills a small digit's loops
                pen = PENS[2]
            drawing = Drawing(
                shape,
                height,
                tuple(float(c) for c in rng.uniform(0.25, 0.75, 2) * CANVAS),
                "random",
                slant=float(rng.uniform(-0.45, 0.5)),
                wobble=float(rng.uniform(1, 11)),
                turn=float(rng.uniform(-30, 30)),
                aspect=float(rng.uniform(0.6, 1.4)),
                pen=pen,
                number=number,
            )
            out.append(_inside_canvas(drawing))
    return sorted(out, key=lambda d: PENS.index(d.pen))


def main() -> None:
    items = drawings()
    images = draw_all(items)
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, x=images, y=np.array([int(d.digit) for d in items], np.uint8))
    print(f"{len(items)} drawings → {FIXTURE}")


if __name__ == "__main__":
    main()
