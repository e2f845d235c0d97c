"""A learner's browser tab without the browser: Streamlit's own websocket protocol, spoken from Python.

    session = StreamlitSession("http://127.0.0.1:8501")
    run = session.open("draw")                      # the page, as a tab first shows it
    run = session.draw(canvas_png([[(140, 40), (140, 240)]]))  # what the canvas sends after a stroke
    read_digit(run, "draw")                          # → "1"

A tab talks to the server over ``/_stcore/stream``: it sends ``BackMsg``
protobufs (a ``rerun_script`` with the page's name and every widget's value)
and reads ``ForwardMsg``s (the elements a run draws, then ``script_finished``).
A widget is addressed by the id the server gave it in the page's first run
(``$$ID-<hash>-<key>``), found here by its key. The canvas component's value is
a JSON string: its Fabric.js drawing and the drawing as a PNG data URL, the same
bytes a real canvas sends (captured from Chromium: docs/facts.md).

For tests that open a fresh server with a whole class at once, and for load
tests: one ``StreamlitSession`` per simulated learner, one thread each.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

CANVAS = 280  # the app's canvas side in pixels (ui.canvas.CANVAS_SIZE)
PEN = 12  # the canvas's default pen width (ui.canvas.DEFAULT_STROKE_WIDTH)
CANVAS_KEYS = {"draw": "draw_canvas_0", "compare": "compare_canvas_0", "inside": "inside_canvas_0"}
# What each page writes once it has read a drawing: the digit it read.
ANSWERS = {
    "draw": r'glance-digit"><b>(\d)</b>',
    "compare": r'glance-list"><b>(\d)</b>',
    "inside": r" reads (\d)\b",
}
_TEXT_FIELDS = ("label", "body", "value")  # what a reader sees of an element


class ServerError(RuntimeError):
    """The server ended a run with an exception on the page, or never finished it."""


@dataclass
class Run:
    """What one script run sent: its elements' text and its widgets' ids."""

    texts: list[str] = field(default_factory=list)  # every element's label and text, in order
    widget_ids: dict[str, str] = field(default_factory=dict)  # user key → $$ID-…-key
    fragments: dict[str, str] = field(default_factory=dict)  # user key → the id of the fragment it is in
    exceptions: list[str] = field(default_factory=list)
    seconds: float = 0.0  # request sent → script_finished received

    def text_matching(self, pattern: str) -> str | None:
        """The first group of the last element text that matches, or None."""
        for text in reversed(self.texts):
            if found := re.search(pattern, text):
                return found.group(1)
        return None


def read_digit(run: Run, page: str, model: str = "") -> str | None:
    """The digit a page answered: the picked model's, or on Compare the named model's row (else the first)."""
    if page == "compare" and model:
        return run.text_matching(rf"<b>(\d)</b><span>[^<]*</span><span>{re.escape(model)}</span>")
    return run.text_matching(ANSWERS[page])


def canvas_png(paths: list[list[tuple[float, float]]], pen: int = PEN) -> bytes:
    """Mouse paths (canvas pixels) drawn white on black with a round pen, as the canvas's PNG."""
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 255))
    draw = ImageDraw.Draw(image)
    for path in paths:
        draw.line(path, fill=(255, 255, 255, 255), width=pen, joint="curve")
        for x, y in (path[0], path[-1]):  # round ends, as the canvas's strokeLineCap
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=(255, 255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png(image: np.ndarray) -> bytes:
    """A 28 × 28 digit (white on black, [0, 1] or uint8) enlarged into the canvas's square, as its PNG."""
    grey = np.asarray(image, np.float32)
    grey = (grey * 255 if grey.max() <= 1 else grey).clip(0, 255).astype(np.uint8)
    big = Image.fromarray(grey, "L").resize((CANVAS, CANVAS), Image.BILINEAR)
    buffer = io.BytesIO()
    Image.merge("RGBA", (big, big, big, Image.new("L", big.size, 255))).save(buffer, format="PNG")
    return buffer.getvalue()


def canvas_value(png: bytes, strokes: int = 1) -> str:
    """The canvas component's widget value: its drawing's objects and the PNG as a data URL."""
    objects = [{"type": "Path", "version": "7.4.0", "stroke": "#FFFFFF", "strokeWidth": PEN}] * strokes
    drawing = {
        "raw": {"version": "7.4.0", "objects": objects, "background": "#000000"},
        "data": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
    }
    return json.dumps({"drawing": drawing})


class StreamlitSession:
    """One tab: a websocket to the server, the page it is on, and the ids of that page's widgets."""

    def __init__(self, base_url: str, *, timeout: float = 60.0):
        self.url = base_url.replace("http://", "ws://", 1).rstrip("/") + "/_stcore/stream"
        self.timeout = timeout
        self.page = ""
        self.query = ""  # the page's query string, as the app last wrote it (the URL's ?…)
        self.widget_ids: dict[str, str] = {}
        self.fragments: dict[str, str] = {}
        self._socket = None

    def __enter__(self) -> StreamlitSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def open(self, page: str, query: str = "") -> Run:
        """Connect (once) and show ``page`` ("draw", "class", …), as a tab opening its URL."""
        if self._socket is None:
            self._socket = connect(self.url, open_timeout=self.timeout, max_size=2**26)
        self.page, self.query = page, query
        self.widget_ids, self.fragments = {}, {}
        return self.rerun({})

    def draw(self, png: bytes, *, strokes: int = 1) -> Run:
        """Send what the page's canvas sends after a stroke; the run that answers it."""
        key = CANVAS_KEYS[self.page]
        return self.rerun({key: ("json_value", canvas_value(png, strokes))})

    def rerun(self, values: dict[str, tuple[str, object]]) -> Run:
        """A rerun with widget values by key (``{"draw_pen": ("double_array_value", [20])}``).

        Like a tab, it sends the URL's query string (``?model=cnn``), which keeps the
        page's choices; widgets whose values it does not send are at their defaults.
        Widgets in one fragment rerun only that fragment, as a tab's do.
        """
        message = BackMsg()
        message.rerun_script.page_name = self.page
        message.rerun_script.query_string = self.query
        fragments = {self.fragments.get(key, "") for key in values}
        if len(fragments) == 1:
            message.rerun_script.fragment_id = fragments.pop()
        for key, (kind, value) in values.items():
            if key not in self.widget_ids:
                raise KeyError(f"no widget with key {key!r} on {self.page}: the page has {sorted(self.widget_ids)}")
            widget = message.rerun_script.widget_states.widgets.add()
            widget.id = self.widget_ids[key]
            if kind == "double_array_value":
                widget.double_array_value.data.extend(value)
            else:
                setattr(widget, kind, value)
        started = time.perf_counter()
        self._socket.send(message.SerializeToString())
        run = self._read_run()
        run.seconds = time.perf_counter() - started
        self.widget_ids.update(run.widget_ids)
        self.fragments.update(run.fragments)
        return run

    def _read_run(self) -> Run:
        run = Run()
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerError(f"no script_finished from {self.page} within {self.timeout:.0f} s")
            try:
                raw = self._socket.recv(timeout=left)
            except TimeoutError:
                continue  # the deadline check above reports it
            message = ForwardMsg()
            message.ParseFromString(raw)
            kind = message.WhichOneof("type")
            if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                content = getattr(element, element.WhichOneof("type"))
                if widget_id := getattr(content, "id", ""):  # $$ID-<hash>-<key>
                    key = widget_id.split("-", 2)[-1]
                    run.widget_ids[key] = widget_id
                    run.fragments[key] = message.delta.fragment_id
                if element.HasField("exception"):
                    run.exceptions.append(f"{element.exception.type}: {element.exception.message}")
                run.texts.append(
                    " ".join(
                        str(getattr(content, name))
                        for name in _TEXT_FIELDS
                        if isinstance(getattr(content, name, None), str)
                    )
                )
            elif kind == "page_info_changed":  # the app wrote st.query_params: the tab's URL changes
                self.query = message.page_info_changed.query_string
            elif kind == "script_finished":
                if message.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # a rerun the page asked for (st.rerun, switch_page): its run follows
                if run.exceptions:
                    raise ServerError(f"{self.page} raised: {'; '.join(run.exceptions)}")
                return run
