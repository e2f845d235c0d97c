# The two commands a newcomer needs (README.md): `make run` and `make test`.
PYTHON ?= python3

.PHONY: install install-test run test

install:
	$(PYTHON) -m pip install -q -r requirements.txt

# Browser tests drive Debian's chromium (Playwright cannot download a browser here).
install-test:
	$(PYTHON) -m pip install -q -r requirements-dev.txt
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

run: install
	$(PYTHON) -m streamlit run app.py

test: install-test
	$(PYTHON) -m pytest
