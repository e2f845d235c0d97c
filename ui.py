"""Streamlit helpers shared by the pages: cached models, the model picker, the drawing input.

Pages import this module and ``model_zoo``; only this module and the pages
import Streamlit.
"""

from __future__ import annotations

import gc
import html
import io
import logging
import re
import secrets
import sys
from dataclasses import dataclass
from functools import cache, partial

import numpy as np
import sqlalchemy as sa
import streamlit as st
from PIL import Image, UnidentifiedImageError
from streamlit.delta_generator import DeltaGenerator

import presence
from model_zoo import class_digits, db, inference, inside, model_card, preprocess, store, teacher

LOG = logging.getLogger(__name__)


def keep_keras_between_runs() -> None:
    """Stop Streamlit from resetting Keras after every script run.

    At the end of each run Streamlit clears "problem modules" (for Keras:
    ``clear_session()`` plus a garbage collection, ~0.5 s with the GIL held),
    which stalls background training and drops compiled functions (docs/facts.md).
    The hook is private, so a missing one is logged and tested, not fatal.
    """
    from streamlit.runtime.scriptrunner import script_runner

    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = lambda: None
    else:
        LOG.warning("streamlit moved _clean_problem_modules: Keras is reset after every run")


def sidebar() -> None:
    with st.sidebar:
        st.markdown("**Digit Recogniser** — draw a digit and watch neural networks read it.")
        st.caption("Seven of the models come from a 2017 Keras tutorial on the Analytics Vidhya "
                   "digits, and carry [its lesson](/zoo): width helps, depth without "
                   "regularisation overfits, dropout needs more epochs.")
        teacher_sign_in()


def is_teacher() -> bool:
    """Signed in with the teacher's password (this browser session only)."""
    return bool(st.session_state.get("teacher"))


def announce_teacher_password() -> None:
    """Print a password made at the first start in the server's log, once, as Jupyter prints its token."""
    try:
        _announce_teacher_password(db.url().render_as_string(hide_password=False))
    except (db.DatabaseError, sa.exc.OperationalError):  # the pages say what is wrong with the database
        pass


@cache  # once per server process and database; the database makes the password once for good
def _announce_teacher_password(_database: str) -> None:
    password = teacher.first_start()
    if password is not None:
        print(f"\n  Teacher password: {password}\n  (made for this database at its first start; "
              "sign in from the sidebar. A new one: python -m scripts.teacher_password)\n",
              file=sys.stderr, flush=True)


def teacher_sign_in() -> None:
    """A password field for what only a teacher does."""
    announce_teacher_password()
    with st.expander("Teacher", icon=":material/school:"):
        if is_teacher():
            st.caption("Signed in: you can stop, save or discard any learner's job and delete any version.")
            st.button("Sign out", key="teacher_sign_out", on_click=st.session_state.pop, args=("teacher", None))
            return
        entered = st.text_input("Teacher password", type="password", key="teacher_password",
                                help="Set by DIGIT_ZOO_TEACHER_PASSWORD, or printed in the server's log "
                                     "at its first start (README: The teacher).")
        if entered:
            try:
                right = teacher.check(entered)
            except db.DatabaseError as error:
                st.error(f"The teacher's password cannot be checked: {error}", icon=":material/database:")
                return
            if right:
                st.session_state.teacher = True
                st.rerun()
            st.error("That is not the teacher password.")


def remember_job_key(key: str) -> None:
    """Keep a job's secret for the session: it also lets the learner delete the version saved from it."""
    keys = st.session_state.setdefault("job_keys", [])
    if key not in keys:
        keys.append(key)


def job_keys() -> list[str]:
    """The secrets of the jobs this session started (or reopened from a link)."""
    return st.session_state.get("job_keys", [])


def literal(text: str, limit: int = 60) -> str:
    """Text from a link, shown as typed: a code span, so Markdown in it (a link, an image) stays text."""
    text = text.replace("`", "'").replace("\n", " ")
    return f"`{text[:limit]}{'…' if len(text) > limit else ''}`"


def naming(text: str, name: str) -> str:
    """``text`` with a file name a user chose in it shown as typed (``literal``), never as Markdown."""
    return text.replace(name, literal(name)) if name else text


def zoo(*, mention_unusable: bool = True) -> store.ZooListing:
    """The zoo as it is now, models no page may run moved to ``unusable``, skipped files shown.

    A few small reads: the records, and each model's config once per server
    process. ``mention_unusable``: a caption naming the models left out (the
    Zoo page lists them with their reasons instead).
    """
    try:
        listing = store.scan()
    except db.DatabaseError as error:
        st.error(f"The versions database cannot be used, so only the shipped models are listed: {error}",
                 icon=":material/database:")
        listing = store.scan_shipped()
    for problem in listing.problems:
        st.warning(problem, icon=":material/warning:")
    usable = []
    for entry in listing.entries:
        try:
            problem = _load_failures.get(entry.cache_key) or _contract_problem(str(entry.path), entry.cache_key)
        except store.ModelFileError as error:  # a version deleted since the listing
            problem = str(error)
        if problem:
            listing.unusable[entry.name] = problem
        else:
            usable.append(entry)
    listing.entries = usable
    if listing.unusable and mention_unusable:
        st.caption(f"Not offered, as they cannot be used: {', '.join(map(literal, listing.unusable))} "
                   "(the Zoo page says why).")
    return listing


@st.cache_data(show_spinner=False, max_entries=1024)
def _contract_problem(path: str, model_key: str) -> str | None:
    return store.contract_problem(path)


# Models that failed to load (cache_key → why), for the server's life: listed as unusable after.
_load_failures: dict[str, str] = {}


@st.cache_resource(show_spinner="Loading model…", max_entries=64)
def _fast_model(path: str, model_key: str) -> inference.FastModel:
    # ``model_key`` changes with the model: a re-saved one is loaded again.
    model = store.read_model(path)  # from the archive: no TensorFlow in the web server
    settle_long_lived_objects()
    return model


def settle_long_lived_objects() -> None:
    """Keep Python's collector out of what lives as long as the server (docs/facts.md).

    Its full collections walk every long-lived object (Streamlit's, Plotly's,
    the models'): a pause every few dozen strokes, for every session. Frozen
    objects are not walked.
    """
    gc.freeze()


def fast_model(entry: store.ZooEntry) -> inference.FastModel:
    """The model for an entry, loaded once per server process and shared by all sessions."""
    try:
        return _fast_model(str(entry.path), entry.cache_key)
    except store.ModelFileError as error:
        _load_failures[entry.cache_key] = str(error)
        raise


def fast_models(listing: store.ZooListing) -> dict[str, inference.FastModel]:
    """Every loadable model; a damaged file becomes a warning, not a broken page."""
    models = {}
    for entry in listing.entries:
        try:
            models[entry.name] = fast_model(entry)
        except store.ModelFileError as error:
            st.warning(str(error), icon=":material/warning:")
    return models


def best_drawing_model(listing: store.ZooListing) -> str:
    """The model the Draw page opens on: the one that reads drawings best."""
    return "cnn_robust" if "cnn_robust" in listing.names else listing.names[-1]


def model_picker(listing: store.ZooListing, *, key: str = "model") -> store.ZooEntry:
    """A "Model" select box that follows ``?model=NAME`` and writes it back, for sharing links."""
    names = listing.names
    wanted = st.query_params.get("model")
    if wanted is not None and wanted not in names:
        st.warning(f"Unknown model {literal(wanted)} in the link. Expected one of: {', '.join(names)}.")
        wanted = None
    # The link wins only when it changed since this session last wrote it (a new
    # link, an edited URL); otherwise it would undo every pick in the select box.
    followed = f"{key}_link"
    if key not in st.session_state or (wanted and wanted != st.session_state.get(followed)):
        st.session_state[key] = wanted or best_drawing_model(listing)
    if st.session_state[key] not in names:  # a deleted version
        st.session_state[key] = best_drawing_model(listing)
    labels = {entry.name: entry.label for entry in listing.entries}
    name = st.selectbox("Model", names, key=key, format_func=labels.get)
    st.query_params["model"] = st.session_state[followed] = name
    return listing.get(name)


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
    # and fails to import in a bare Python process (a test importing ui).
    from streamlit_drawable_canvas import st_canvas

    messages = st if messages is None else messages
    version = st.session_state.setdefault(f"{key}_version", 0)  # Clear bumps it
    source_key = f"{key}_source"
    stroke_width = st.slider("Pen width", 6, 50, DEFAULT_STROKE_WIDTH, key=f"{key}_pen",
                             help="Any width works for a big digit: the model sees strokes evened out to MNIST's "
                                  "width. A fat pen fills in the loops of a small digit.")
    canvas = st_canvas(
        stroke_width=stroke_width, stroke_color="#FFFFFF", background_color="#000000",
        height=CANVAS_SIZE, width=CANVAS_SIZE, drawing_mode="freedraw",
        return_image_data=True, key=f"{key}_canvas_{version}",
        on_change=partial(_remember_source, source_key, "canvas"))
    try:
        rgba = _canvas_rgba(canvas.image_bytes)  # decodes a PNG: once per run (docs/facts.md)
    except (ValueError, OSError, Image.DecompressionBombError) as error:  # a hand-made value, not the canvas
        messages.error(f"The drawing could not be read: {_unreadable(error)}. Press Clear and draw again.",
                       icon=":material/broken_image:")
        return None
    # Written after the canvas: once it shows a new width, so does the canvas's pen.
    st.caption(f"Pen {stroke_width} px. One digit, any size, anywhere on the square.")
    st.button("Clear", key=f"{key}_clear", icon=":material/ink_eraser:",
              on_click=_clear, args=(key,), help="Empty the canvas and forget the uploaded picture.")
    upload = st.file_uploader(
        "Or upload a photo or scan of one digit", type=["png", "jpg", "jpeg"],
        key=f"{key}_upload_{version}", on_change=_remember_source, args=(source_key, "upload"))

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
            messages.error(f"Could not read {name} as a picture: {_unreadable(error)}. "
                           "Expected a PNG or JPEG photo or scan of one digit.",
                           icon=":material/broken_image:")
        return None
    if not drawn:
        messages.info(HINT, icon=":material/draw:")
        return None
    if covered > MAX_CANVAS_INK:
        messages.info(f"{covered:.0%} of the square is ink: that is no digit. Press Clear and draw one "
                      "digit with strokes, not a filled area.", icon=":material/ink_eraser:")
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
        glance.markdown('<p class="glance-empty">Draw below: the reading shows here.</p>',
                        unsafe_allow_html=True)
        return
    glance.markdown(f'<p class="glance-digit"><b>{prediction.digit}</b> '
                    f"<span>{prediction.confidence:.0%} sure</span></p>", unsafe_allow_html=True)


def glance_list(glance: DeltaGenerator, predictions: dict[str, inference.Prediction | None]) -> None:
    """Compare's glance: one line per model (digit, confidence, name); dashes before a drawing."""
    rows = "".join(
        f"<b>{p.digit}</b><span>{p.confidence:.0%}</span><span>{html.escape(name)}</span>" if p else
        f"<b>–</b><span>–</span><span>{html.escape(name)}</span>"
        for name, p in predictions.items())
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
    st.image(pixels, caption="What the model sees: 28 × 28 pixels, made the way MNIST's digits "
                             "were (cropped, fitted into 20 px, centred by mass), strokes evened "
                             "out to MNIST's width")


def _remember_source(source_key: str, source: str) -> None:
    st.session_state[source_key] = source


def _clear(key: str) -> None:
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
            raise ValueError(f"it is {width} × {height} pixels; at most {MAX_PICTURE_PIXELS // 10**6} million "
                             "are read. Crop or shrink it")
        picture.load()  # a truncated file fails here, as OSError
        return preprocess.to_mnist(picture)


def download_model(entry: store.ZooEntry, *, key: str) -> str:
    """Buttons for the model as a .keras file for plain Keras and its card (Zoo, a saved job); the card.

    The file is read only when its button is clicked.
    """
    card = model_card.markdown(entry)
    keras_file, card_file = st.columns(2)
    keras_file.download_button(f"Download {model_card.file_name(entry)}", lambda: entry.path.read_bytes(),
                               file_name=model_card.file_name(entry), mime="application/octet-stream",
                               on_click="ignore", icon=":material/download:", key=f"{key}_download_model")
    card_file.download_button("Download its model card", card, file_name=f"{entry.name}.md",
                              mime="text/markdown", on_click="ignore", icon=":material/description:",
                              key=f"{key}_download_card")
    st.caption("The file loads with `keras.models.load_model` anywhere Keras 3 runs; the card says what it "
               "learnt from, how well it reads and where it fails. Neither names who trained it.")
    return card


# ------------------------------------------------------------------ why this digit (Inside, Draw)


def show_why(entry: store.ZooEntry, model: inference.FastModel, image: np.ndarray, *,
             saliency: bool) -> None:
    """Which parts of the drawing made the model read its digit and not the runner-up's.

    Occlusion always (one fast batch); saliency (integrated gradients) when asked.
    """
    digits = inside.ranked(model.predict(image).probabilities)
    erased = inside.occlusion(model, image, list(digits))
    row = st.container(horizontal=True)  # side by side while they fit, then wrapping
    for values, digit in zip(erased, digits):
        row.image(inside.overlay(image, values), caption=f"Erasing, for {digit}")
    if saliency:
        with st.spinner(f"Integrated gradients of {entry.name}…"):
            maps = inside.Saliency(model)(image, list(digits))
        for values, digit in zip(maps, digits):
            row.image(inside.overlay(image, values), caption=f"Saliency, for {digit}")
    first, second = digits
    text = (f"Erasing: a black {inside.PATCH} px square wipes out each part of the drawing in turn. "
            f"Red where erasing makes {first} (or {second}, the runner-up) less likely: the ink that "
            "speaks for it; blue, more likely: the ink that speaks against it. Each map has its own "
            "scale.")
    if saliency:
        text += (" Saliency: integrated gradients of the digit's score (its logit, before the softmax), "
                 "averaged along the way from an empty canvas to this drawing, so each map adds up to "
                 "what the drawing did to the score; red, ink that raised it; blue, lowered it. A single "
                 "gradient only says what a tiny change of ink would do.")
    st.caption(text)


def why_panel(entry: store.ZooEntry, model: inference.FastModel, image: np.ndarray) -> None:
    """Draw's "why" panel, collapsed; its maps are computed only while it is open."""
    panel = st.expander("Why this digit?", key="draw_why", on_change="rerun", icon=":material/lightbulb:")
    if panel.open:
        with panel:
            show_why(entry, model, image, saliency=False)
            st.page_link("app_pages/inside.py", label=f"Inside {entry.name}: every layer, and saliency",
                         icon=":material/visibility:", query_params={"model": entry.name})


# ------------------------------------------------------------------ the class's digits (Draw, Compare, Class)


LEARNER_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # as secrets.token_urlsafe makes them


def learner_key() -> str:
    """This learner's id, a random secret: their digits and their one job go with it.

    Kept in the session, and in the Train page's link (``?learner=``, as the
    job's key is), so a reload there is the same learner; a new browser, or a
    link without it, is a new one.
    """
    if "learner_key" not in st.session_state:
        given = st.query_params.get("learner", "")
        st.session_state.learner_key = given if LEARNER_ID.match(given) else secrets.token_urlsafe(16)
    return st.session_state.learner_key


def learner_name() -> str:
    return st.session_state.get("learner_name", "").strip() or class_digits.ANONYMOUS


def class_picker(key: str) -> str:
    """The class the session's digits go to: "my class", or one the teacher named (shared by pages)."""
    try:
        names = class_digits.classes()
    except db.DatabaseError as error:
        st.error(f"The class's digits cannot be read: {error}", icon=":material/database:")
        st.stop()
    if st.session_state.get("class_name") not in names:
        st.session_state.class_name = class_digits.DEFAULT_CLASS
    if len(names) > 1:
        # The widget's own state goes with its page and would lag a class named meanwhile: class_name leads.
        st.session_state[key] = st.session_state.class_name
        st.selectbox("Class", names, key=key, on_change=_remember_class, args=(key,))
    return st.session_state.class_name


def _remember_class(widget: str) -> None:
    st.session_state.class_name = st.session_state[widget]


def keep_drawing(key: str, digit: Digit, predicted: int, listing: store.ZooListing) -> None:
    """ "Keep this drawing as a …": ten buttons, the model's digit first; one click stores it and clears.

    ``key`` is the one given to ``digit_from_canvas_or_upload``. What every
    model of ``listing`` reads is stored with the digit.
    """
    with st.container(key=f"{key}_keep"):
        st.markdown("**Keep this drawing as a …**")
        row = st.container(horizontal=True, gap="small")
        name_column, class_column = st.columns(2)
        # The widget's own state goes when another page is shown: the name lives in learner_name.
        st.session_state[f"{key}_learner"] = st.session_state.get("learner_name", "")
        name_column.text_input("Your name (once per visit; else anonymous)", key=f"{key}_learner",
                               max_chars=class_digits.MAX_NAME_LENGTH, on_change=_remember_name,
                               args=(f"{key}_learner",))
        with class_column:
            class_name = class_picker(f"{key}_class")
        for label in [predicted, *(d for d in range(10) if d != predicted)]:
            row.button(str(label), key=f"{key}_keep_{label}", type="primary" if label == predicted else "secondary",
                       help="What the model read" if label == predicted else None,
                       on_click=_keep, args=(key, class_name, label, digit, listing))
        _keep_feedback(key, class_name)


def keep_counter(key: str) -> None:
    """The feedback of the last keep, and "your digits: …", also shown while the canvas is empty."""
    _keep_feedback(key, st.session_state.get("class_name", class_digits.DEFAULT_CLASS))


def _keep_feedback(key: str, class_name: str) -> None:
    for level, message in st.session_state.pop(f"{key}_kept", []):
        getattr(st, level)(message)
    try:
        per_label = class_digits.counts(class_name, learner_key())
    except db.DatabaseError:
        return
    if sum(per_label):
        st.caption(f"Your digits in {literal(class_name)}: {sum(per_label)} (0–9: "
                   f"{', '.join(map(str, per_label))}). See them all on the Class page.")


def _remember_name(widget: str) -> None:
    st.session_state.learner_name = st.session_state[widget]


def _keep(key: str, class_name: str, label: int, digit: Digit, listing: store.ZooListing) -> None:
    # A callback: it runs before the rerun, so the click is stored even if the page moves on.
    readings = {}
    for entry in listing.entries:
        try:
            readings[entry.name] = fast_model(entry).predict(digit.image)
        except store.ModelFileError:  # the page already says so
            continue
    picture = None
    if digit.canvas is not None:
        buffer = io.BytesIO()
        Image.fromarray(digit.canvas).save(buffer, format="PNG", optimize=True)
        picture = buffer.getvalue()
    try:
        kept = class_digits.keep(
            class_name, label=label, image=digit.image, learner=learner_name(), owner_key=learner_key(),
            readings={name: (p.digit, p.confidence) for name, p in readings.items()}, picture=picture,
            pen=digit.pen, source="drawn" if digit.canvas is not None else "uploaded")
    except class_digits.ClassDigitsError as error:
        st.session_state[f"{key}_kept"] = [("error", str(error))]
        return
    except db.DatabaseError as error:
        st.session_state[f"{key}_kept"] = [("error", f"Not kept: the database cannot be used ({error}).")]
        return
    if kept is None:
        st.session_state[f"{key}_kept"] = [("info", "That drawing is kept already: draw the next one.")]
    else:
        st.session_state[f"{key}_kept"] = [("success", f"Kept as a {label}. Draw the next one.")]
    _clear(key)
