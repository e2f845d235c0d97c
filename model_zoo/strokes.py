"""Training digits redrawn as pen strokes, the way the app's canvas draws them.

Long on purpose: tracing, the pen's path, the hand's variations and rendering are the steps of
one pipeline, each used only by the next.

MNIST and USPS are scans of ink on paper: strokes that thin and swell, ends
that fade. The app's input is a round pen of one width drawn by a mouse or a
finger, and people's pens do things scanned digits rarely show: a 0 drawn in
one stroke whose end runs past its start, a 6 whose loop crosses its stem, a
gap left open, a shaky line. This module turns a scanned digit into that:

Real people's pen strokes (UNIPEN, ``data.load_pen_digits``) need no
tracing: ``pen_digit_images`` draws them through steps 3 and 4, varied as
other hands would write them (``PEN_TRAINING_HAND``) or as they were written.

1. skeletonise it (scikit-image) and trace the skeleton into ordered
   polylines, joined through crossings where the line runs on straight, as a
   pen would have drawn it;
2. vary it as a hand does: overshoot where a loop closes, a tail that crosses
   a stroke, a gap left open, a wobble, a slant, a turn, a stretch; a 1 may
   be given the flag (and foot) that European hands write and MNIST's lack;
3. draw it with a round pen on the app's 280 px square at a random size,
   place and pen width, as white on black RGBA like the canvas gives;
4. pass it through ``preprocess.to_mnist``, exactly as a drawing is.

For training, tests and scoring (the pen column), never a drawing's path:
scikit-image is a development dependency (requirements-dev.txt), imported
only when a digit is first traced. Renderings of a whole set are cached in
data/strokes/ (git-ignored), so a second run reads them back instead of
spending ~10 ms a digit again.
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from model_zoo import config, data, preprocess

CANVAS = 280  # the app's canvas side in pixels (ui.CANVAS_SIZE)
DEFAULT_PEN = 12  # the app's default pen width (ui.DEFAULT_STROKE_WIDTH)
PEN_RANGE = (6, 50)  # the app's pen slider
CACHE_DIR = config.PROJECT_ROOT / "data" / "strokes"
# Bump when the rendering changes: cached renderings of an older version are not reused.
# 2: a traced digit's sway is centred on its varied paths (on_canvas), not its traced ones.
VERSION = 2
BLOCK = 5_000  # digits per cache file

_UPSAMPLE = 2  # skeletons of 56 px digits are smoother than of 28 px ones
_INK_LEVEL = 0.4  # of the digit's brightest pixel: what counts as ink for the skeleton
_SPUR = 3.0 * _UPSAMPLE  # skeleton branches shorter than this (28 px units) are artefacts
_TINY_LOOP = 6 * _UPSAMPLE  # closed skeleton loops with fewer pixels are pinholes, not loops
_STRAIGHT_ON = 0.5  # through a crossing a line runs on if it turns by less than 60° (cos > 0.5)
_SMOOTH = 5  # moving-average window over skeleton pixels: stairs → a hand's curve

INSTALL_HINT = (
    "Rendering training digits as pen strokes needs scikit-image: "
    "pip install -r requirements-dev.txt (or pip install scikit-image==0.26.0)."
)


@dataclass(frozen=True)
class Hand:
    """How a drawing hand varies; each drawing picks its own values within these ranges."""

    height: tuple[float, float] = (50, 250)  # the digit's height on the canvas, px
    default_pen: float = 0.5  # share of drawings made with the app's default pen
    max_pen: float = 0.22  # of the digit's height: fatter pens fill loops in, people pick thinner
    loop_overshoot: float = 0.45  # share of closed loops whose end runs past their start
    loop_lead_in: float = 0.3  # ... that start outside the loop (the two ends cross)
    loop_gap: float = 0.2  # ... left open
    joint_tail: float = 0.3  # share of stroke ends at a crossing that run past it
    joint_gap: float = 0.15  # ... that stop short of it
    tail: tuple[float, float] = (0.03, 0.2)  # tail length, of the digit's height
    wobble: float = 0.025  # largest sway of the line, of the digit's height
    slant: float = 0.35  # largest shear, ±
    turn_deg: float = 10.0  # largest rotation, ±
    stretch: float = 0.2  # largest width change, ± log-ratio
    margin: float = 4.0  # px kept free at the canvas edge
    # A European 1 (european_one=True): a flag down and left from its top, sometimes a foot.
    flag_below_level_deg: tuple[float, float] = (35, 70)  # steeper than a 7's bar, which lies about level
    flag_off_stem_deg: tuple[float, float] = (20, 65)  # nearer would be the stem, farther a caret
    flag_length: tuple[float, float] = (0.15, 0.45)  # of the stem's length
    foot: float = 0.3  # share of European 1s with a foot
    # Between the mouse's samples, of the digit's height (None: the points as they are): the faster the
    # hand, the farther apart, joined by straight lines. Kept small: the canvas smooths its paths.
    sampling: tuple[float, float] | None = None


HAND = Hand()
# Real people's pen strokes (UNIPEN) are already a hand's: varied as other hands would write them when
# training, only placed on the canvas at a random height, place and pen width when measuring.
PEN_TRAINING_HAND = Hand(wobble=0.015, slant=0.25, turn_deg=8.0, stretch=0.15, sampling=(0.005, 0.04))
AS_WRITTEN = Hand(wobble=0.0, slant=0.0, turn_deg=0.0, stretch=0.0)


@dataclass
class Stroke:
    """One pen-down-to-pen-up line: points (K, 2) as (x, y), and what its ends touch."""

    points: np.ndarray
    closed: bool = False  # a loop: its end is its start
    start_joined: bool = False  # the start lies on another line (a crossing or a T)
    end_joined: bool = False


# ------------------------------------------------------------------ tracing


def _skeleton(image: np.ndarray) -> np.ndarray:
    """(28, 28) digit → (56, 56) bool one-pixel-wide skeleton of its largest ink parts."""
    try:
        from skimage.morphology import skeletonize
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    grey = np.asarray(image, np.float32)
    up = ndimage.zoom(grey / max(float(grey.max()), 1e-6), _UPSAMPLE, order=1)
    ink = up > _INK_LEVEL
    labels, count = ndimage.label(ink, structure=np.ones((3, 3)))
    if count > 1:  # specks are not part of the digit
        sizes = np.bincount(labels.ravel())[1:]
        ink = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.1 * sizes.max()))
    return skeletonize(ink)


def _graph(skeleton: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """Skeleton pixels (P, 2) as (row, col) and each one's neighbours.

    A diagonal step is dropped where an L of two straight steps joins the same
    pixels: otherwise every stair in a skeleton would look like a junction.
    """
    pixels = np.argwhere(skeleton)
    index = -np.ones((skeleton.shape[0] + 2, skeleton.shape[1] + 2), np.int64)
    index[pixels[:, 0] + 1, pixels[:, 1] + 1] = np.arange(len(pixels))
    r, c = pixels[:, 0] + 1, pixels[:, 1] + 1
    neighbours: list[list[int]] = [[] for _ in pixels]
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == dc == 0:
                continue
            other = index[r + dr, c + dc]
            keep = other >= 0
            if dr and dc:
                keep &= (index[r + dr, c] < 0) & (index[r, c + dc] < 0)
            for i in np.flatnonzero(keep):
                neighbours[i].append(int(other[i]))
    return pixels, neighbours


def _edges(pixels: np.ndarray, neighbours: list[list[int]]):
    """Split the skeleton into edges between nodes (ends and junctions) and bare loops.

    Returns node ids per pixel (junction pixels that touch share one id), the
    edges as (first node, last node, pixel path) and the loops as pixel paths.
    """
    degree = np.array([len(n) for n in neighbours])
    is_node = degree != 2
    node_of = -np.ones(len(pixels), np.int64)
    for start in np.flatnonzero(is_node):  # touching junction pixels form one node
        if node_of[start] >= 0:
            continue
        node_of[start] = start
        stack = [start]
        while stack:
            p = stack.pop()
            for q in neighbours[p]:
                if is_node[q] and degree[q] > 2 and degree[p] > 2 and node_of[q] < 0:
                    node_of[q] = start
                    stack.append(q)
    seen: set[tuple[int, int]] = set()
    on_edge = np.zeros(len(pixels), bool)
    edges = []
    for start in np.flatnonzero(is_node):
        for first in neighbours[start]:
            if (start, first) in seen or (is_node[first] and node_of[first] == node_of[start]):
                continue
            path, prev, cur = [start, first], start, first
            seen.update({(start, first), (first, start)})
            while not is_node[cur]:
                prev, cur = cur, next(q for q in neighbours[cur] if q != prev)
                seen.update({(prev, cur), (cur, prev)})
                path.append(cur)
            on_edge[path] = True
            edges.append((int(node_of[start]), int(node_of[cur]), path))
    loops = []
    for start in np.flatnonzero(~is_node & ~on_edge):  # rings with no junction on them: an O
        if on_edge[start]:
            continue
        path, prev, cur = [start], -1, start
        while True:
            on_edge[cur] = True
            nxt = next((q for q in neighbours[cur] if q != prev and not on_edge[q]), None)
            if nxt is None:
                break
            path.append(nxt)
            prev, cur = cur, nxt
        if len(path) >= _TINY_LOOP:
            loops.append(path)
    return node_of, edges, loops


def _length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()) if len(points) > 1 else 0.0


def _direction_out(points: np.ndarray, reach: float = 4.0) -> np.ndarray:
    """Unit direction from points[0] towards the line ~`reach` px along it."""
    steps = np.linalg.norm(points - points[0], axis=1)
    far = np.flatnonzero(steps >= reach)
    vector = points[far[0] if far.size else -1] - points[0]
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else np.zeros(2)


def trace(image: np.ndarray) -> list[Stroke]:
    """A (28, 28) digit (uint8 or float, white on black) → its pen strokes in 28 px units.

    Points are (x, y), x to the right and y down. A line that runs straight on
    through a crossing stays one stroke (an 8 can be one stroke); a stroke that
    ends where it meets another line is marked joined there. Raises ValueError
    for an image with no ink.
    """
    skeleton = _skeleton(image)
    if not skeleton.any():
        raise ValueError("No ink to trace: the digit is blank.")
    pixels, neighbours = _graph(skeleton)
    node_of, edges, loops = _edges(pixels, neighbours)
    xy = pixels[:, ::-1].astype(np.float64) / _UPSAMPLE  # (P, 2) x, y in 28 px units

    degree_of_node: dict[int, int] = {}
    for a, b, _ in edges:
        degree_of_node[a] = degree_of_node.get(a, 0) + 1
        degree_of_node[b] = degree_of_node.get(b, 0) + 1
    # Short branches from a junction to a free end are skeleton artefacts.
    kept = [
        (a, b, path)
        for a, b, path in edges
        if not ((degree_of_node[a] == 1) != (degree_of_node[b] == 1) and _length(xy[path]) * _UPSAMPLE < _SPUR)
    ]
    if not kept:  # a dot or a short dash: keep its longest piece
        kept = [max(edges, key=lambda e: len(e[2]))] if edges else []

    # Pair edge ends at each junction where the line runs straight on.
    ends: dict[int, list[tuple[int, int]]] = {}  # node → [(edge, 0 start / 1 end)]
    for i, (a, b, _) in enumerate(kept):
        ends.setdefault(a, []).append((i, 0))
        ends.setdefault(b, []).append((i, 1))
    partner: dict[tuple[int, int], tuple[int, int]] = {}
    for node_ends in ends.values():
        outward = {e: _direction_out(xy[kept[e[0]][2]][:: (1 if e[1] == 0 else -1)]) for e in node_ends}
        pairs = sorted(
            ((float(outward[p] @ outward[q]), p, q) for k, p in enumerate(node_ends) for q in node_ends[k + 1 :])
        )
        for cosine, p, q in pairs:  # most nearly opposite first
            if -cosine > _STRAIGHT_ON and p not in partner and q not in partner:
                partner[p], partner[q] = q, p
    joined_node = {n for n, node_ends in ends.items() if len(node_ends) > 1}

    strokes: list[Stroke] = []
    used = [False] * len(kept)

    def walk(edge: int, side: int) -> tuple[list[int], tuple[int, int]]:
        """Follow edges from `edge`'s `side` end; the pixel path and the last end reached."""
        path: list[int] = []
        while True:
            used[edge] = True
            pixels_here = kept[edge][2] if side == 0 else kept[edge][2][::-1]
            path.extend(pixels_here if not path else pixels_here[1:])
            far_end = (edge, 1 - side)
            nxt = partner.get(far_end)
            if nxt is None or used[nxt[0]]:
                return path, far_end
            edge, side = nxt

    starts = [(i, s) for i in range(len(kept)) for s in (0, 1) if (i, s) not in partner]
    for edge, side in starts:
        if used[edge]:
            continue
        path, last = walk(edge, side)
        first_node = kept[edge][side]
        last_node = kept[last[0]][last[1]]
        if first_node == last_node and len(ends[first_node]) == 2:  # round and back: a loop
            strokes.append(Stroke(_smooth(xy[path], closed=True), closed=True))
            continue
        strokes.append(
            Stroke(
                _smooth(xy[path], closed=False),
                start_joined=first_node in joined_node,
                end_joined=last_node in joined_node,
            )
        )
    for edge in range(len(kept)):  # what is left runs round through junctions: loops
        if not used[edge]:
            path, _ = walk(edge, 0)
            strokes.append(Stroke(_smooth(xy[path], closed=True), closed=True))
    for loop in loops:
        strokes.append(Stroke(_smooth(xy[loop], closed=True), closed=True))
    return strokes


def _smooth(points: np.ndarray, closed: bool) -> np.ndarray:
    """Moving average over the skeleton's pixel stairs; open ends stay where they are."""
    if len(points) < _SMOOTH:
        return points
    half = _SMOOTH // 2
    kernel = np.ones(_SMOOTH) / _SMOOTH
    if closed:
        padded = np.concatenate([points[-half:], points, points[:half]])
        return np.stack([np.convolve(padded[:, k], kernel, "valid") for k in (0, 1)], axis=1)
    padded = np.concatenate([np.repeat(points[:1], half, 0), points, np.repeat(points[-1:], half, 0)])
    out = np.stack([np.convolve(padded[:, k], kernel, "valid") for k in (0, 1)], axis=1)
    out[0], out[-1] = points[0], points[-1]
    return out


# ------------------------------------------------------------------ a hand's variations


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    """Points every ~`step` along the line (first and last kept)."""
    if len(points) < 2:
        return points
    distance = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    if distance[-1] == 0:
        return points[:1]
    at = np.linspace(0.0, distance[-1], max(2, int(distance[-1] / step) + 1))
    return np.stack([np.interp(at, distance, points[:, k]) for k in (0, 1)], axis=1)


def _tail(points: np.ndarray, length: float, bend_rad: float) -> np.ndarray:
    """A straight piece of `length` leaving the last point in the line's direction, bent by `bend_rad`."""
    direction = -_direction_out(points[::-1], reach=2.0)
    cos, sin = math.cos(bend_rad), math.sin(bend_rad)
    direction = np.array([cos * direction[0] - sin * direction[1], sin * direction[0] + cos * direction[1]])
    return points[-1] + np.outer(np.linspace(0, length, 6)[1:], direction)


def _cut(points: np.ndarray, length: float) -> np.ndarray:
    """The line without its last `length` (never less than half of it)."""
    length = min(length, 0.5 * _length(points))
    keep = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    return points[keep <= keep[-1] - length]


def _vary_loop(points: np.ndarray, size: float, rng: np.random.Generator, hand: Hand) -> np.ndarray:
    """A closed loop as one pen stroke: started somewhere, closed exactly, past its start, or short."""
    points = points[:-1] if np.allclose(points[0], points[-1]) else points
    start = int(np.argmin(points[:, 1])) if rng.random() < 0.6 else int(rng.integers(len(points)))
    ring = np.roll(points, -start, axis=0)
    if rng.random() < 0.5:  # either way round
        ring = np.concatenate([ring[:1], ring[:0:-1]])
    path = np.concatenate([ring, ring[:1]])  # back at the start
    roll = rng.random()
    if roll < hand.loop_overshoot:
        overlap = int(rng.uniform(0, 0.2) * len(ring))
        path = np.concatenate([path, ring[1 : overlap + 1]])
        path = np.concatenate([path, _tail(path, rng.uniform(*hand.tail) * size, rng.uniform(-0.7, 0.7))])
        if rng.random() < hand.loop_lead_in:  # started outside: the two ends cross
            lead = _tail(path[::-1], rng.uniform(*hand.tail) * size, rng.uniform(-0.7, 0.7))
            path = np.concatenate([lead[::-1], path])
    elif roll < hand.loop_overshoot + hand.loop_gap:
        path = _cut(path, rng.uniform(0.03, 0.12) * _length(path))
    return path


def _vary_end(points: np.ndarray, size: float, rng: np.random.Generator, hand: Hand) -> np.ndarray:
    """The end of a stroke that meets another line: run past it, stop short, or meet it."""
    roll = rng.random()
    if roll < hand.joint_tail:
        return np.concatenate([points, _tail(points, rng.uniform(*hand.tail) * size, rng.uniform(-0.4, 0.4))])
    if roll < hand.joint_tail + hand.joint_gap:
        return _cut(points, rng.uniform(0.02, 0.08) * size)
    return points


def _european_one(strokes: list[Stroke], rng: np.random.Generator, hand: Hand) -> list[Stroke]:
    """A 1 traced as one line, written as much of Europe writes it: a flag from its top, maybe a foot.

    MNIST's writers were American: few of its 1s have a flag, and the tracer cannot
    invent one. Drawn without a crossbar on the 7, a flagged 1 is what people mean.
    """
    if len(strokes) != 1 or strokes[0].closed or len(strokes[0].points) < 3:
        return strokes  # already more than a plain line: leave it as it was written
    stem = strokes[0].points
    if stem[0, 1] > stem[-1, 1]:
        stem = stem[::-1]  # from the top down
    length = _length(stem)
    down = _direction_out(stem, reach=0.4 * length)
    # Directions as degrees from the x axis (y is down): straight down is 90, level to the left 180.
    stem_deg = math.degrees(math.atan2(down[1], down[0]))
    low, high = 180 - hand.flag_below_level_deg[1], 180 - hand.flag_below_level_deg[0]
    low, high = max(low, stem_deg + hand.flag_off_stem_deg[0]), min(high, stem_deg + hand.flag_off_stem_deg[1])
    if low > high:  # a 1 leaning far over to the left has no room for a flag that is not a 7's bar
        return strokes
    flag_deg = math.radians(rng.uniform(low, high))
    flag_way = np.array([math.cos(flag_deg), math.sin(flag_deg)])
    flag = stem[0] + np.outer(np.linspace(1, 0, 6), flag_way * rng.uniform(*hand.flag_length) * length)
    out = [Stroke(np.concatenate([flag, stem[1:]]))]
    if rng.random() < hand.foot:
        half = 0.5 * rng.uniform(0.3, 0.6) * length
        tilt = rng.uniform(-0.1, 0.1)
        out.append(Stroke(stem[-1] + np.outer(np.linspace(-half, half, 6), [1.0, tilt]), start_joined=True))
    return out


def drawn_strokes(
    image: np.ndarray, rng: np.random.Generator, hand: Hand = HAND, *, european_one: bool = False
) -> tuple[list[np.ndarray], int]:
    """A digit as a hand would draw it on the canvas: mouse paths in canvas px, and the pen width.

    With ``european_one`` the digit is a 1, and gets a flag (see ``_european_one``).
    """
    strokes = trace(image)
    if european_one:
        strokes = _european_one(strokes, rng, hand)
    every = np.concatenate([s.points for s in strokes])
    size = max(float(np.ptp(every[:, 1])), float(np.ptp(every[:, 0])), 1.0)  # 28 px units
    paths = []
    for stroke in strokes:
        points = _resample(stroke.points, 0.25)
        if len(points) < 3:  # a dot: nothing to vary
            paths.append(points)
            continue
        if stroke.closed:
            points = _vary_loop(points, size, rng, hand)
        else:
            if stroke.end_joined:
                points = _vary_end(points, size, rng, hand)
            if stroke.start_joined:
                points = _vary_end(points[::-1], size, rng, hand)[::-1]
        if rng.random() < 0.5:  # drawn from either end
            points = points[::-1]
        paths.append(points)
    return on_canvas(paths, rng, hand)


def on_canvas(paths: list[np.ndarray], rng: np.random.Generator, hand: Hand = HAND) -> tuple[list[np.ndarray], int]:
    """Pen paths in any units → as a hand draws them on the canvas: swayed, slanted, turned,
    stretched (as far as ``hand`` allows), at a random height, place and pen width; canvas px."""
    every = np.concatenate(paths)
    size = max(float(np.ptp(every[:, 1])), float(np.ptp(every[:, 0])), 1e-6)
    # One smooth sway for the whole drawing, so lines that meet still meet.
    centre = every.mean(axis=0)
    wavelength = rng.uniform(0.4, 1.2) * size
    amplitude = rng.uniform(0, hand.wobble) * size
    waves = rng.normal(size=(2, 2))
    phases = rng.uniform(0, 2 * math.pi, 2)
    slant = rng.uniform(-hand.slant, hand.slant)
    turn = math.radians(rng.uniform(-hand.turn_deg, hand.turn_deg))
    stretch = math.exp(rng.uniform(-hand.stretch, hand.stretch))
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])

    def shape(points: np.ndarray) -> np.ndarray:
        sway = np.sin(2 * math.pi * (points @ waves.T) / wavelength + phases)  # (K, 2)
        p = points - centre + amplitude * sway
        p = np.stack([p[:, 0] * stretch - slant * p[:, 1], p[:, 1]], axis=1)
        return p @ rotation.T

    paths = [shape(p) for p in paths]
    every = np.concatenate(paths)
    low, high = every.min(axis=0), every.max(axis=0)
    extent = np.maximum(high - low, 1e-6)
    height = rng.uniform(*hand.height)
    pen = DEFAULT_PEN if rng.random() < hand.default_pen else int(rng.integers(PEN_RANGE[0], PEN_RANGE[1] + 1))
    if pen > hand.max_pen * height:
        pen = int(rng.integers(PEN_RANGE[0], max(PEN_RANGE[0], int(hand.max_pen * height)) + 1))
    room = CANVAS - 2 * hand.margin - pen
    scale = min(height / extent[1], room / extent[0], room / extent[1])
    size_px = extent * scale
    corner = hand.margin + pen / 2 + rng.uniform(0, 1, 2) * (room - size_px)
    paths = [corner + (p - low) * scale for p in paths]
    if hand.sampling is not None:  # a fast mouse: points far apart, joined by straight lines
        step = rng.uniform(*hand.sampling) * size_px[1]
        paths = [_resample(p, step) for p in paths]
    return paths, pen


def render(paths: list[np.ndarray], pen: int) -> np.ndarray:
    """Mouse paths drawn with a round pen like the canvas: (280, 280, 4) uint8 RGBA, white on black."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(image)
    radius = pen / 2
    # The pen stamped along the path, closer than its width: PIL's wide polylines
    # leave hairline cracks between short segments, which a canvas stroke has not.
    for path in paths:
        for x, y in _resample(path, min(2.0, pen / 6)):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    grey = np.asarray(image)
    rgba = np.empty((CANVAS, CANVAS, 4), np.uint8)
    rgba[..., :3] = grey[..., None]
    rgba[..., 3] = 255  # the canvas's black background is opaque
    return rgba


def pen_digit_image(digit: data.PenDigit, rng: np.random.Generator, hand: Hand = AS_WRITTEN) -> np.ndarray:
    """One real pen-stroke digit drawn with the canvas's pen: (28, 28) float32 in [0, 1], as the app sees it."""
    paths, pen = on_canvas(list(digit.strokes), rng, hand)
    return preprocess.to_mnist(render(paths, pen))


def pen_digit_images(
    digits: list[data.PenDigit],
    *,
    seed: int,
    hand: Hand = AS_WRITTEN,
    renders: int = 1,
    cache: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Real pen-stroke digits, each drawn ``renders`` times with its own random hand: uint8 (N * renders,
    28, 28) in render-major order, and the labels. The same seed gives the same images.

    About 10 ms a digit on one core; with ``cache``, kept in ``cache_dir`` (default CACHE_DIR),
    keyed by the digits' checksum, the seed, the hand, ``renders`` and VERSION.
    """
    y = np.tile(np.array([d.label for d in digits], np.uint8), renders)
    path = None
    if cache:
        key = f"{data.pen_digits_sha256(digits)}{seed}{renders}{hand!r}".encode()
        path = Path(cache_dir or CACHE_DIR) / f"unipen-v{VERSION}-{len(y)}-{hashlib.sha256(key).hexdigest()[:20]}.npy"
        if path.is_file():
            cached = np.load(path)
            if cached.shape == (len(y), 28, 28):
                return cached, y
    x = np.empty((len(y), 28, 28), np.uint8)
    for i, digit in enumerate(digits):
        # Each digit's own hands, the same whichever list or order it comes in (a sample renders as the whole).
        ink = zlib.crc32(b"".join(stroke.tobytes() for stroke in digit.strokes))
        for r in range(renders):
            rng = np.random.default_rng([seed, r, ink, zlib.crc32(digit.writer.encode())])
            x[r * len(digits) + i] = np.rint(pen_digit_image(digit, rng, hand) * 255)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")  # another process may write it too
        with open(partial, "wb") as f:
            np.save(f, x)
        os.replace(partial, path)
    return x, y


def pen_version(
    image: np.ndarray, rng: np.random.Generator, hand: Hand = HAND, *, european_one: bool = False
) -> np.ndarray:
    """One digit redrawn with the canvas's pen: (28, 28) float32 in [0, 1], as the app sees it."""
    paths, pen = drawn_strokes(image, rng, hand, european_one=european_one)
    return preprocess.to_mnist(render(paths, pen))


# ------------------------------------------------------------------ whole data sets


def _digit_rng(image: np.ndarray, seed: int) -> np.random.Generator:
    """Each digit's own random hand, the same whichever set or order it comes in."""
    return np.random.default_rng([seed, zlib.crc32(np.ascontiguousarray(image).tobytes())])


def _render(x: np.ndarray, seed: int, european_ones: bool) -> np.ndarray:
    out = np.empty(x.shape, np.uint8)
    for i, image in enumerate(x):
        out[i] = np.rint(pen_version(image, _digit_rng(image, seed), european_one=european_ones) * 255)
    return out


def cached_block(
    x: np.ndarray, seed: int, cache_dir: str | os.PathLike | None, european_ones: bool = False
) -> np.ndarray:
    """Pen versions of one block of digits, read from or written to the cache."""
    if cache_dir is None:
        return _render(x, seed, european_ones)
    digest = hashlib.sha256(np.ascontiguousarray(x, np.uint8).tobytes()).hexdigest()[:20]
    kind = "pen-european-1" if european_ones else "pen"
    path = Path(cache_dir) / f"{kind}-v{VERSION}-s{seed}-{len(x)}-{digest}.npy"
    if path.is_file():
        cached = np.load(path)
        if cached.shape == x.shape:
            return cached
    out = _render(x, seed, european_ones)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")  # another process may write it too
    with open(partial, "wb") as f:
        np.save(f, out)
    os.replace(partial, path)
    return out


def blocks(x: np.ndarray) -> list[np.ndarray]:
    """The blocks ``pen_versions`` caches ``x`` in (a second process can fill them from the end)."""
    return [x[start : start + BLOCK] for start in range(0, len(x), BLOCK)]


def pen_versions(
    x: np.ndarray,
    *,
    seed: int = 0,
    european_ones: bool = False,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """(N, 28, 28) uint8 digits → the same digits redrawn with the canvas's pen, uint8.

    With ``european_ones`` the digits are 1s, drawn with a flag where they
    trace as one line. About 10 ms a digit on one core. With ``cache``, kept
    in ``cache_dir`` (default CACHE_DIR) in blocks of BLOCK digits, keyed by
    their checksum, the seed, the kind and VERSION.
    """
    x = np.asarray(x, np.uint8)
    folder = (cache_dir or CACHE_DIR) if cache else None
    return np.concatenate([cached_block(block, seed, folder, european_ones) for block in blocks(x)])
