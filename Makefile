# The two commands a newcomer needs (README.md): `make run` and `make test`.
PYTHON ?= python3

.PHONY: install install-test run test

install:
	$(PYTHON) -m pip install -q -r requirements.txt

# Browser tests drive Debian's chromium (Playwright cannot download a browser here);
# database tests start their own throwaway server from Debian's postgresql.
install-test:
	$(PYTHON) -m pip install -q -r requirements-dev.txt
	(command -v chromium && ls /usr/lib/postgresql/*/bin/initdb) >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq chromium postgresql)

run: install
	$(PYTHON) -m streamlit run app.py

test: install-test
	$(PYTHON) -m pytest
