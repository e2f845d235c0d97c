"""Shared Streamlit helpers that do not need a page."""

from streamlit.runtime.scriptrunner import script_runner

from ui import runtime


def test_the_private_keras_reset_hook_is_still_there_and_gets_disabled(monkeypatch):
    # Streamlit resets Keras after every run through this private function
    # (docs/facts.md); if it moves, background training stalls again: fail here.
    assert callable(getattr(script_runner, "_clean_problem_modules", None))
    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    runtime.keep_keras_between_runs()
    assert script_runner._clean_problem_modules() is None
    assert script_runner._clean_problem_modules.__name__ == "<lambda>"
