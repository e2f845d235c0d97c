"""Page tests for Draw and Compare with streamlit.testing.v1.AppTest.

AppTest cannot render the drawing canvas (a custom component): under AppTest
`st_canvas` returns its default, an empty drawing. To test the drawing path the
tests put a drawing where the component would: in the canvas widget's session
state, as the PNG data URL the browser sends. The browser tests draw for real.
"""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from model_zoo import db, store
from ui import models

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
DRAW, COMPARE = "app_pages/draw.py", "app_pages/compare.py"
TIMEOUT = 60  # the first run loads TensorFlow and the models


def shipped():
    entries = [e for e in store.scan().entries if e.shipped]
    assert entries, "no shipped models in model_zoo/trained (python -m scripts.train_zoo)"
    return entries


def open_page(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    if page != DRAW:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def sign_in_as_teacher(at: AppTest, password: str) -> None:
    """Sign in from the sidebar's Teacher box, as a teacher does."""
    at.text_input(key="teacher_password").input(password).run()
    assert not at.error, [e.value for e in at.error]


def seven(size: int = 280, *, ink=(255, 255, 255), paper=(0, 0, 0), mode: str = "RGB") -> Image.Image:
    """A hand-drawn-looking 7: a top bar, then a slanted downstroke."""
    image = Image.new(mode, (size, size), paper)
    pen = ImageDraw.Draw(image)
    s = size / 280
    pen.line(
        [(90 * s, 60 * s), (195 * s, 55 * s), (165 * s, 140 * s), (130 * s, 230 * s)],
        fill=ink,
        width=round(22 * s),
        joint="curve",
    )
    return image


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def draw_on_canvas(at: AppTest, key: str, image: Image.Image, strokes: int = 2) -> None:
    """Put a drawing into the canvas as the browser component would send it."""
    url = "data:image/png;base64," + base64.b64encode(png_bytes(image.convert("RGBA"))).decode()
    objects = [{"type": "Path"} for _ in range(strokes)]
    at.session_state[f"{key}_canvas_0"] = {"drawing": {"raw": {"objects": objects}, "data": url}, "backgroundFit": None}
    at.run()
    assert not at.exception, at.exception


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("page", [DRAW, COMPARE])
def test_empty_canvas_shows_the_hint_and_no_prediction(page):
    shipped()
    at = open_page(page)
    assert any(info.value.startswith("Draw a digit") for info in at.info)
    assert "Prediction" not in metrics(at)
    assert not at.error


def test_model_picker_lists_every_shipped_model():
    entries = shipped()
    at = open_page(DRAW)
    options = at.selectbox(key="model").options
    assert [models.label(e) for e in entries] == options[: len(entries)]


def test_draw_opens_on_the_model_that_reads_drawings_best():
    entries = shipped()
    at = open_page(DRAW)
    expected = "cnn_robust" if "cnn_robust" in [e.name for e in entries] else store.scan().names[-1]
    assert at.selectbox(key="model").value == expected


def test_model_in_the_link_is_preselected_and_the_link_follows_the_picker():
    names = [e.name for e in shipped()]
    at = open_page(DRAW, model="mlp_1x500")
    assert at.selectbox(key="model").value == "mlp_1x500"
    at.selectbox(key="model").set_value(names[0]).run()
    assert at.query_params["model"] == names[0]


def test_unknown_model_in_the_link_is_a_warning_not_a_crash():
    shipped()
    at = open_page(DRAW, model="mlp_5x5")
    assert any("Unknown model `mlp_5x5`" in w.value for w in at.warning)


def test_markdown_in_a_link_stays_text():
    shipped()
    at = open_page(DRAW, model="[click me](https://evil.example)")
    assert any("Unknown model `[click me](https://evil.example)` in the link" in w.value for w in at.warning)


def test_drawing_reaches_a_prediction_and_the_model_input():
    shipped()
    at = open_page(DRAW)
    draw_on_canvas(at, "draw", seven(), strokes=2)
    assert metrics(at)["Prediction"] == "7"
    assert any("your drawing (2 strokes)" in c.value for c in at.caption)
    assert not at.info  # the hint is gone


def test_clear_brings_the_hint_back():
    shipped()
    at = open_page(DRAW)
    draw_on_canvas(at, "draw", seven())
    at.button(key="draw_clear").click().run()
    assert "Prediction" not in metrics(at)
    assert any(info.value.startswith("Draw a digit") for info in at.info)


@pytest.mark.parametrize(
    "fmt, ink, paper",
    [
        ("PNG", (255, 255, 255), (0, 0, 0)),  # light on dark
        ("JPEG", (40, 30, 30), (235, 230, 220)),  # a dark pen on paper
    ],
)
def test_uploaded_picture_reaches_a_prediction(fmt, ink, paper):
    shipped()
    at = open_page(DRAW)
    picture = png_bytes(seven(600, ink=ink, paper=paper), fmt)
    at.file_uploader(key="draw_upload_0").set_value((f"seven.{fmt.lower()}", picture, f"image/{fmt.lower()}"))
    at.run()
    assert not at.exception, at.exception
    assert not at.error
    assert metrics(at)["Prediction"] == "7"


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"this is not a picture", "Could not read"),
        (None, "No digit found"),  # a blank page
    ],
)
def test_unreadable_or_blank_upload_is_an_error_message(content, expected):
    shipped()
    at = open_page(DRAW)
    content = content or png_bytes(Image.new("RGB", (300, 300), (250, 250, 250)))
    at.file_uploader(key="draw_upload_0").set_value(("digit.png", content, "image/png")).run()
    assert not at.exception, at.exception
    assert any(expected in e.value for e in at.error), [e.value for e in at.error]
    assert "Prediction" not in metrics(at)


def test_a_file_that_is_no_picture_is_named_as_sent_without_python_reprs():
    shipped()
    at = open_page(DRAW)
    at.file_uploader(key="draw_upload_0").set_value(
        ("[x](https://evil.example).png", b"GIF89a nonsense", "image/png")
    ).run()
    message = at.error[0].value
    assert "`[x](https://evil.example).png`" in message and "not a PNG or JPEG file" in message
    assert "BytesIO" not in message and "0x" not in message


def upload_variant(kind: str) -> bytes:
    """A seven as a 16-bit greyscale or palette PNG, or a PNG cut off halfway through."""
    picture = seven(300)
    if kind == "16-bit":
        wide = np.asarray(picture.convert("L"), dtype=np.uint16) * 257
        return png_bytes(Image.fromarray(wide))
    if kind == "palette":
        return png_bytes(picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    whole = png_bytes(picture)
    return whole[: len(whole) // 2]


@pytest.mark.parametrize("kind, expected", [("16-bit", "7"), ("palette", "7"), ("truncated", None)])
def test_uncommon_and_cut_off_pngs(kind, expected):
    shipped()
    at = open_page(DRAW)
    at.file_uploader(key="draw_upload_0").set_value((f"{kind}.png", upload_variant(kind), "image/png")).run()
    assert not at.exception, at.exception
    if expected:
        assert metrics(at)["Prediction"] == expected
    else:
        assert any("the file is damaged or cut short" in e.value for e in at.error), [e.value for e in at.error]


def solid_canvas(gap: int = 0) -> Image.Image:
    """The square painted over (a strip of ``gap`` px left black): what a bored learner does."""
    image = Image.new("L", (280, 280), 255)
    image.paste(0, (0, 0, gap, 280))
    return image


@pytest.mark.parametrize("page", [DRAW, COMPARE])
@pytest.mark.parametrize("gap", [0, 40])
def test_a_painted_over_canvas_is_no_digit(page, gap):
    shipped()
    at = open_page(page)
    key = "draw" if page == DRAW else "compare"
    draw_on_canvas(at, key, solid_canvas(gap), strokes=30)
    assert any("of the square is ink" in info.value for info in at.info), [i.value for i in at.info]
    assert "Prediction" not in metrics(at) and not at.table


def test_a_dot_is_no_digit_on_draw():
    shipped()
    at = open_page(DRAW)
    dot = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(dot).ellipse((134, 134, 146, 146), fill=255)  # a click with the 12 px pen
    draw_on_canvas(at, "draw", dot, strokes=1)
    assert any(info.value.startswith("That is only a dot") for info in at.info), [i.value for i in at.info]
    assert "Prediction" not in metrics(at)


def test_a_version_with_code_in_it_is_never_offered_and_the_zoo_says_why(database):
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Lambda(lambda x: x * 2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "clever.keras")
        content = (Path(folder) / "clever.keras").read_bytes()
    record = dict(shipped()[0].record, arch="mlp_1x50", params=model.count_params())
    with db.engine().begin() as connection:
        store.insert_version(connection, "clever", record, content)
    for page in (DRAW, COMPARE):
        at = open_page(page)
        if page == DRAW:
            assert not [o for o in at.selectbox(key="model").options if o.startswith("clever")]
        assert any("Not offered, as they cannot be used: `clever`" in c.value for c in at.caption)
    at = open_page("app_pages/zoo.py")
    unusable = at.dataframe[0].value
    assert list(unusable["model"]) == ["clever"] and "refused: it contains code" in unusable["why"][0]


def test_compare_shows_one_row_per_model():
    listing = store.scan()
    shipped()
    at = open_page(COMPARE)
    draw_on_canvas(at, "compare", seven(), strokes=2)
    table = at.table[0].value
    assert list(table["Model"]) == listing.names
    if "cnn_robust" in listing.names:
        assert table.set_index("Model").loc["cnn_robust", "Note"] == "beyond the tutorial"
    agreement = [m.value for m in (*at.success, *at.warning)]
    assert any(v.startswith(("All ", "The models disagree")) for v in agreement), agreement


def test_a_picture_bomb_is_refused_before_it_is_unpacked():
    """13000 × 13000 black pixels: ~0.5 MB as a PNG, 169 million pixels (1.3 GB) unpacked."""
    shipped()
    at = open_page(DRAW)
    bomb = io.BytesIO()
    Image.new("1", (13_000, 13_000)).save(bomb, "PNG")
    at.file_uploader(key="draw_upload_0").set_value(("bomb.png", bomb.getvalue(), "image/png")).run()
    assert not at.exception, at.exception
    assert any("it is 13000 × 13000 pixels; at most 16 million are read" in e.value for e in at.error)
