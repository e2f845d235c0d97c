"""The drawing input: the canvas (with its phone layout and toolbar fix) or an uploaded picture → a Digit."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from functools import partial

import numpy as np
import streamlit as st
from PIL import Image, UnidentifiedImageError
from streamlit.delta_generator import DeltaGenerator

import presence
from model_zoo import inference, preprocess
from ui.quoting import literal

# The canvas is 10 × the model's 28 px. Preprocessing evens out stroke widths,
# but it cannot reopen loops that a fat pen filled in: a fine default pen keeps
# small digits readable (a 60 px digit drawn with a 22 px pen is a blob), and
# big digits drawn with it are thickened to MNIST's width.
CANVAS_SIZE = 280
DEFAULT_STROKE_WIDTH = 12
MAX_CANVAS_INK = 0.6  # a 50 px pen's bold 8 covers ~half the square; more is painting, not a digit
MAX_PICTURE_PIXELS = 16_000_000  # a 16-megapixel phone photo; a bigger picture is refused unread
MAX_CANVAS_PIXELS = (4 * CANVAS_SIZE) ** 2  # the canvas's value, even from a screen of 4 pixels a point
HINT = "Draw a digit on the black square (or upload a photo of one): the prediction appears as you draw."


@dataclass(frozen=True)
class Digit:
    """What the user gave: the (28, 28) float32 image a model sees, and where it came from."""

    image: np.ndarray  # (28, 28) float32 in [0, 1], white on black
    source: str  # "your drawing (3 strokes)" or "the picture five.png", for captions
    canvas: np.ndarray | None = None  # (280, 280, 4) uint8 RGBA as drawn; None for a picture
    pen: int | None = None  # the pen's width in px, for a drawing


def digit_from_canvas_or_upload(key: str, *, messages: DeltaGenerator | None = None) -> Digit | None:
    """A canvas, its pen and Clear controls, and an uploader → the digit, or None.

    Renders into the current container; the hint for an empty canvas and any
    error for an unreadable picture go to ``messages`` (default: here). Each
    page passes its own ``key``, so each page keeps its own drawing. When both
    a drawing and a picture are present, the one changed last is read.
    """
    # Imported here: the component registers itself with a running Streamlit
    # and fails to import in a bare Python process (a test importing ui.canvas).
    from streamlit_drawable_canvas import st_canvas

    messages = st if messages is None else messages
    version = st.session_state.setdefault(f"{key}_version", 0)  # Clear bumps it
    source_key = f"{key}_source"
    stroke_width = st.slider(
        "Pen width",
        6,
        50,
        DEFAULT_STROKE_WIDTH,
        key=f"{key}_pen",
        help="Any width works for a big digit: the model sees strokes evened out to MNIST's "
        "width. A fat pen fills in the loops of a small digit.",
    )
    canvas = st_canvas(
        stroke_width=stroke_width,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=CANVAS_SIZE,
        width=CANVAS_SIZE,
        drawing_mode="freedraw",
        return_image_data=True,
        key=f"{key}_canvas_{version}",
        on_change=partial(_remember_source, source_key, "canvas"),
    )
    try:
        rgba = _canvas_rgba(canvas.image_bytes)  # decodes a PNG: once per run (docs/facts.md)
    except (ValueError, OSError, Image.DecompressionBombError) as error:  # a hand-made value, not the canvas
        messages.error(
            f"The drawing could not be read: {_unreadable(error)}. Press Clear and draw again.",
            icon=":material/broken_image:",
        )
        return None
    # Written after the canvas: once it shows a new width, so does the canvas's pen.
    st.caption(f"Pen {stroke_width} px. One digit, any size, anywhere on the square.")
    st.button(
        "Clear",
        key=f"{key}_clear",
        icon=":material/ink_eraser:",
        on_click=clear,
        args=(key,),
        help="Empty the canvas and forget the uploaded picture.",
    )
    upload = st.file_uploader(
        "Or upload a photo or scan of one digit",
        type=["png", "jpg", "jpeg"],
        key=f"{key}_upload_{version}",
        on_change=_remember_source,
        args=(source_key, "upload"),
    )

    # Painted over (even all of it): the unpainted rest, or nothing, would be read as the digit.
    covered = preprocess.ink_coverage(rgba) if rgba is not None else 0.0
    drawn = covered > MAX_CANVAS_INK or preprocess.canvas_has_ink(rgba)
    if upload is not None and (not drawn or st.session_state.get(source_key) != "canvas"):
        name = literal(upload.name)
        try:
            return Digit(_picture_to_mnist(upload.getvalue()), f"the picture {name}")
        except preprocess.NoInkError as error:
            messages.error(f"{name}: {error}", icon=":material/image_not_supported:")
        except (ValueError, OSError, Image.DecompressionBombError) as error:
            messages.error(
                f"Could not read {name} as a picture: {_unreadable(error)}. "
                "Expected a PNG or JPEG photo or scan of one digit.",
                icon=":material/broken_image:",
            )
        return None
    if not drawn:
        messages.info(HINT, icon=":material/draw:")
        return None
    if covered > MAX_CANVAS_INK:
        messages.info(
            f"{covered:.0%} of the square is ink: that is no digit. Press Clear and draw one "
            "digit with strokes, not a filled area.",
            icon=":material/ink_eraser:",
        )
        return None
    try:
        image = preprocess.to_mnist(rgba)
    except preprocess.NoInkError:
        messages.info("That is only a dot or a speck, not a digit. " + HINT, icon=":material/draw:")
        return None
    strokes = sum(obj.get("type") == "Path" for obj in (canvas.json_data or {}).get("objects", []))
    presence.drawing()
    return Digit(image, f"your drawing ({strokes} stroke{'s' * (strokes != 1)})", canvas=rgba, pen=stroke_width)


@dataclass(frozen=True)
class DrawingLayout:
    """Where a drawing page renders: the canvas box, the glance in it, the results."""

    canvas: DeltaGenerator  # the canvas and its controls (digit_from_canvas_or_upload)
    glance: DeltaGenerator  # the answer in a few words, above the canvas; phones only
    results: DeltaGenerator  # the full answer: chart, table, the model input


def drawing_layout(key: str, *, glance_height: int = 40, results_width: int = 480) -> DrawingLayout:
    """A box for the canvas and one for results: side by side, or stacked on narrow screens.

    Columns share out the page width and can squeeze the 280 px canvas until
    part of it scrolls out of reach; a wrapping row of fixed widths keeps it whole.
    Side by side from a 1280 px wide window with the sidebar open.

    On a phone the results land a screen or two below the canvas, where no one
    looks while drawing, and a finger on the canvas cannot scroll. So phones
    also get a glance: the answer in a few words right above the canvas (the
    drawing hand hides what is below it), beside Clear, in ``glance_height``
    pixels reserved so that the canvas never moves under the finger. ``key``
    is the one given to ``digit_from_canvas_or_upload``.
    """
    st.html(_phone_css(key))
    st.html(_TOOLBAR_ABOVE_THE_CANVAS, unsafe_allow_javascript=True)
    row = st.container(horizontal=True, gap="medium")
    box = row.container(width=CANVAS_SIZE + 20, key=f"{key}_box")
    glance = box.container(height=glance_height, border=False, key=f"{key}_glance")
    return DrawingLayout(box, glance, row.container(width=results_width))


def glance_digit(glance: DeltaGenerator, prediction: inference.Prediction | None) -> None:
    """Draw's glance: the digit read and how sure the model is, or where they will show."""
    if prediction is None:
        glance.markdown('<p class="glance-empty">Draw below: the reading shows here.</p>', unsafe_allow_html=True)
        return
    glance.markdown(
        f'<p class="glance-digit"><b>{prediction.digit}</b> <span>{prediction.confidence:.0%} sure</span></p>',
        unsafe_allow_html=True,
    )


def glance_list(glance: DeltaGenerator, predictions: dict[str, inference.Prediction | None]) -> None:
    """Compare's glance: one line per model (digit, confidence, name); dashes before a drawing."""
    rows = "".join(
        f"<b>{p.digit}</b><span>{p.confidence:.0%}</span><span>{html.escape(name)}</span>"
        if p
        else f"<b>–</b><span>–</span><span>{html.escape(name)}</span>"
        for name, p in predictions.items()
    )
    glance.markdown(f'<div class="glance-list">{rows}</div>', unsafe_allow_html=True)


def glance_list_height(models: int) -> int:
    """Pixels for ``glance_list``: a 20 px line per model, at most 8½ lines.

    A class's versions can make the list long; past 8 lines it scrolls, half a
    line showing that there is more, and the canvas stays on the first screen.
    """
    return round(20 * min(models, 8.5)) + 4


# The canvas component's toolbar (undo, redo, delete) waits invisible over the
# square's top-right corner and moves above it only after a hover: a stroke
# that starts there at once (a quick hand, a replayed drawing, a finger) hit
# the toolbar and drew nothing. Its styles live in the component's shadow root,
# out of reach of page CSS: this script adds a sheet there that keeps the
# toolbar above the square, taking clicks only while shown.
_TOOLBAR_ABOVE_THE_CANVAS = """<script>
(() => {
  if (window.digitZooToolbarFix) return;  // one observer per browser tab
  window.digitZooToolbarFix = true;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(`.dc-toolbar { top: -2.65rem !important; pointer-events: none; }
    .dc-root:hover > .dc-toolbar, .dc-toolbar[data-pinned=true] { pointer-events: auto; }`);
  const patch = () => document.querySelectorAll('[class*="_canvas_"] *').forEach(element => {
    const root = element.shadowRoot;
    if (root && !root.adoptedStyleSheets.includes(sheet)) {
      root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    }
  });
  patch();
  new MutationObserver(patch).observe(document.body, {childList: true, subtree: true});
})();
</script>"""

# Phones: up to Streamlit's own width for stacking columns. There the canvas
# box becomes a wrapping row: glance and Clear side by side, the canvas under
# them, then pen and upload. Wider screens keep the order of the code.
PHONE_MAX_WIDTH = 640


def _phone_css(key: str) -> str:
    # Two-part selectors outrank Streamlit's own one-class styles.
    box = f'[data-testid="stVerticalBlock"].st-key-{key}_box'
    glance = f".st-key-{key}_glance"
    return f"""<style>
@media (min-width: {PHONE_MAX_WIDTH + 1}px) {{
  {box} > :has({glance}) {{ display: none; }}
}}
@media (max-width: {PHONE_MAX_WIDTH}px) {{
  [data-testid="stLayoutWrapper"]:has(> {box}) {{ flex: 1 1 100%; }}
  {box} {{ flex-flow: row wrap; align-items: flex-end; }}
  {box} > * {{ order: 3; flex: 1 1 100%; }}
  {box} > :has({glance}) {{ order: 0; flex: 1 1 0; }}
  {box} > .st-key-{key}_clear {{ order: 1; flex: 0 0 auto; }}
  {box} > [class*="st-key-{key}_canvas_"] {{ order: 2; }}
}}
{glance} p {{ margin: 0; }}
.glance-empty {{ color: rgba(49, 51, 63, 0.6); font-size: 0.875rem; line-height: 40px; }}
.glance-digit {{ line-height: 40px; }}
.glance-digit b {{ font-size: 2.25rem; }}
.glance-list {{ display: grid; grid-template-columns: 1em 3em 1fr; gap: 0 0.5rem;
  font-size: 0.875rem; line-height: 20px; }}
</style>"""


def show_model_input(image: np.ndarray, *, zoom: int = 5) -> None:
    """The (28, 28) image a model sees, enlarged with square pixels so each one shows."""
    pixels = np.kron(np.clip(image, 0, 1) * 255, np.ones((zoom, zoom))).astype(np.uint8)
    st.image(
        pixels,
        caption="What the model sees: 28 × 28 pixels, made the way MNIST's digits "
        "were (cropped, fitted into 20 px, centred by mass), strokes evened "
        "out to MNIST's width",
        output_format="PNG",  # exact, and ~0.6 KB a stroke where Streamlit's JPEG (quality 100) is ~24 KB
    )


def _remember_source(source_key: str, source: str) -> None:
    st.session_state[source_key] = source


def clear(key: str) -> None:
    """Empty the canvas ``key`` and forget its uploaded picture (Clear, and a kept drawing)."""
    # New widget keys give an empty canvas and an empty uploader (docs/facts.md).
    st.session_state[f"{key}_version"] += 1
    st.session_state.pop(f"{key}_source", None)


def _unreadable(error: Exception) -> str:
    """Why a file is no picture, without Pillow's reprs (``<_io.BytesIO object at 0x…>``)."""
    if isinstance(error, UnidentifiedImageError):
        return "it is not a PNG or JPEG file"
    if isinstance(error, Image.DecompressionBombError):
        return "it unpacks to far too many pixels"
    if isinstance(error, OSError):
        return "the file is damaged or cut short"
    return str(error)


def _canvas_rgba(png: bytes | None) -> np.ndarray | None:
    """The canvas's value (a PNG) → (h, w, 4) uint8 RGBA; its size is read from the header first.

    The value comes from the browser, so a hand-made one can be any PNG: a
    0.45 MB one of 9000 × 9000 pixels would unpack to 324 MB.
    """
    if png is None:
        return None
    with Image.open(io.BytesIO(png)) as picture:  # reads the header only
        width, height = picture.size
        if width * height > MAX_CANVAS_PIXELS:
            raise ValueError(f"it is {width} × {height} pixels, and the canvas is {CANVAS_SIZE} × {CANVAS_SIZE}")
        return np.asarray(picture.convert("RGBA"))


@st.cache_data(max_entries=32, show_spinner=False)
def _picture_to_mnist(data: bytes) -> np.ndarray:
    """An uploaded file's bytes → (28, 28); cached, as the picture stays across reruns."""
    with Image.open(io.BytesIO(data)) as picture:  # reads the header only
        width, height = picture.size
        if width * height > MAX_PICTURE_PIXELS:  # a few hundred KB can unpack to gigabytes
            raise ValueError(
                f"it is {width} × {height} pixels; at most {MAX_PICTURE_PIXELS // 10**6} million "
                "are read. Crop or shrink it"
            )
        picture.load()  # a truncated file fails here, as OSError
        return preprocess.to_mnist(picture)
