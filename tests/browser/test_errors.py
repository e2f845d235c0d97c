"""A bug in a page reaches the learner as a plain notice, never as a traceback naming server paths."""

import shutil

from playwright.sync_api import expect

from tests.browser.conftest import FIRST_PAGE_SECONDS, ROOT, running_app

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
