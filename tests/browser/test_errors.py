"""A bug in a page reaches the learner as a plain notice, never as a traceback naming server paths."""

import shutil
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import FIRST_PAGE_SECONDS, ROOT, running_app, wait_until_idle

SECRET = "/srv/digit-zoo/secret_folder/models.py"


def test_an_uncaught_error_shows_no_type_message_or_traceback(browser, tmp_path):
    """The app's own config, a script with a bug: the browser sees a notice, the log keeps the detail."""
    (tmp_path / ".streamlit").mkdir()
    shutil.copy(ROOT / ".streamlit" / "config.toml", tmp_path / ".streamlit" / "config.toml")
    script = tmp_path / "buggy.py"
    script.write_text(f"raise KeyError({SECRET!r})\n")
    log = tmp_path / "server.log"
    with running_app(f"sqlite:///{tmp_path / 'unused.db'}", log, script=script) as url:
        page = browser.new_page()
        page.goto(url)
        notice = page.get_by_test_id("stException")
        expect(notice).to_be_visible(timeout=FIRST_PAGE_SECONDS * 1000)
        shown = notice.inner_text()
        page.close()
    assert "secret_folder" not in shown and "KeyError" not in shown and "Traceback" not in shown, shown
    assert SECRET in log.read_text()  # the teacher's terminal still has it


@pytest.mark.parametrize("path", ["nope", "draw?model=../../etc/passwd", "train?job=%27%3BDROP%20TABLE%20jobs&key=x"])
def test_unknown_pages_and_hostile_links_open_the_app_not_an_error(page, app_url, path):
    """An unknown page gets Streamlit's "Page not found" notice over Draw; a bad value, a message."""
    page.goto(f"{app_url}/{path}")
    expect(page.locator("h1").first).to_be_visible(timeout=FIRST_PAGE_SECONDS * 1000)
    wait_until_idle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert "root:x:0:0" not in page.content()  # no /etc/passwd, whatever the link asked for


@pytest.mark.parametrize(
    "path", ["..%2F..%2Fetc%2Fpasswd", "static/..%2F..%2F..%2Fetc%2Fpasswd", "app/static/../../../etc/passwd"]
)
def test_a_path_out_of_the_app_is_refused_by_the_server(app_url, path):
    try:
        with urllib.request.urlopen(f"{app_url}/{path}", timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    assert b"root:x:0:0" not in body, status  # Tornado answers 400/404, or the app's own page
