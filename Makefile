# make run   - create .venv, install helpdeskd, start the daemon on config.example.toml
# make test  - install the test extras (and Dovecot, as root, when missing), run the suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.toml
PYTEST_ARGS ?=

.PHONY: run test lint dovecot chromium clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	mkdir -p var
	$(BIN)/helpdeskd --config $(CONFIG) run

test: $(VENV)/.installed dovecot chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .

# The IMAP tests run against a real Dovecot; install it when missing and we may.
dovecot:
	@if command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing dovecot-imapd for the IMAP tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	else echo "dovecot is not installed and we are not root: the IMAP tests will be skipped"; fi

# The status page is tested in a real headless browser: Debian's chromium, driven by Playwright.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the status page's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is not installed and we are not root: the browser tests will be skipped"; fi

clean:
	rm -rf $(VENV) var .pytest_cache
