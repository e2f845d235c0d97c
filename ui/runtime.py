"""Process hooks of the web server: Streamlit's Keras reset switched off, long-lived objects frozen."""

from __future__ import annotations

import gc
import logging

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


def settle_long_lived_objects() -> None:
    """Keep Python's collector out of what lives as long as the server (docs/facts.md).

    Its full collections walk every long-lived object (Streamlit's, Plotly's,
    the models'): a pause every few dozen strokes, for every session. Frozen
    objects are not walked.
    """
    gc.freeze()
