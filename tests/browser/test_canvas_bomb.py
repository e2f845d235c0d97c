"""A canvas bomb through the real websocket: a hand-made canvas value of 9000 × 9000 pixels.

The browser's canvas sends a 280 × 280 PNG; anyone can send another value on
the same websocket. Sent as the canvas's value by a client speaking Streamlit's
protocol, the bomb is refused from the PNG's header, the server's peak memory
rises by less than 50 MB, and the next learner's drawing is read as before.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from scripts.benchmarks.streamlit_client import StreamlitSession, canvas_png, read_digit

from .conftest import running_app

ONE = canvas_png([[(140, 40), (140, 240)]])


def peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def test_a_canvas_bomb_on_the_websocket_is_refused_unread(tmp_path):
    bomb = io.BytesIO()
    Image.new("RGBA", (9000, 9000)).save(bomb, format="PNG")  # ~0.3 MB sent, 324 MB as pixels
    servers = []
    with running_app(f"sqlite:///{tmp_path / 'digit_zoo.db'}", tmp_path / "streamlit.log", process=servers) as url:
        pid = servers[0].pid
        with StreamlitSession(url) as attacker, StreamlitSession(url) as learner:
            attacker.open("draw")
            assert read_digit(attacker.draw(ONE), "draw") == "1"  # warm: the page's own work is done once
            before = peak_mb(pid)
            refused = attacker.draw(bomb.getvalue())
            rise = peak_mb(pid) - before
            learner.open("draw")
            assert read_digit(learner.draw(ONE), "draw") == "1"
    assert any("9000 × 9000 pixels, and the canvas is 280 × 280" in text for text in refused.texts), refused.texts
    print(f"{len(bomb.getvalue()) / 1e6:.2f} MB sent; server peak memory +{rise:.0f} MB")
    assert rise < 50
