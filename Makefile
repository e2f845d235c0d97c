# The two commands a newcomer needs (README.md): `make run` and `make test`.
PYTHON ?= python3

.PHONY: install install-test install-fast run test test-fast lint

install:
	$(PYTHON) -m pip install -q -r requirements.txt

install-fast:
	$(PYTHON) -m pip install -q -r requirements-dev.txt

# Browser tests drive Debian's chromium (Playwright cannot download a browser here);
# database tests start their own throwaway server from Debian's postgresql; the test of
# several web processes puts Debian's nginx in front of them.
install-test: install-fast
	(command -v chromium && ls /usr/lib/postgresql/*/bin/initdb && test -x /usr/sbin/nginx) >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq chromium postgresql nginx)

# `streamlit run app.py`, or several of them behind nginx on a machine with 4 cores or more (scripts/serve.py).
run: install
	$(PYTHON) -m scripts.serve

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# Everything: lint, unit, page, PostgreSQL, Ray and browser tests (CI runs this).
test: install-test lint
	$(PYTHON) -m pytest

# Unit and page tests only: no root, no apt, no browser, no PostgreSQL, no Ray.
test-fast: install-fast
	$(PYTHON) -m pytest -m "not browser and not postgres and not slow"
