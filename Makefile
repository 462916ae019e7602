# make run   - create .venv, install helpdeskd and its runtime dependencies, start the daemon
#              on config.example.toml
# make test  - install the test extras (and Dovecot, PostgreSQL, chromium and systemd-analyze,
#              as root, when missing), run the suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.toml
PYTEST_ARGS ?=
# pytest-xdist: one worker per core (each with its own PostgreSQL cluster, ports and folders);
# PYTEST_WORKERS=0 runs the suite in one process
PYTEST_WORKERS ?= auto
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: run test lint dovecot postgresql systemd chromium clean venv var

venv:
	@test -x $(BIN)/python || { echo "creating the virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }

# The daemon needs only the runtime dependencies; pip shows what it fetches as it goes.
$(VENV)/.runtime: pyproject.toml | venv
	@echo "installing helpdeskd and its runtime dependencies into $(VENV) (about 20 s the first time)"
	$(PIP) install --progress-bar off -e .
	@touch $@

$(VENV)/.installed: pyproject.toml | venv
	@echo "installing helpdeskd with the test extras into $(VENV)"
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	@touch $@ $(VENV)/.runtime

# Private, as helpdeskd makes its own folders (it warns of one others may read): it holds the
# customers' mail. install -d also closes a var/ an older Makefile left open.
var:
	@install -d -m 0700 var

run: $(VENV)/.runtime var
	@echo "starting helpdeskd on $(CONFIG) (Ctrl-C stops it)"
	$(BIN)/helpdeskd --config $(CONFIG) run

test: $(VENV)/.installed dovecot postgresql systemd chromium
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .

# The IMAP tests run against a real Dovecot; install it when missing and we may.
dovecot:
	@if command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing dovecot-imapd for the IMAP tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	else echo "dovecot is not installed and we are not root: the IMAP tests will be skipped"; fi

# The PostgreSQL tests start their own server with Debian's initdb and postgres.
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing postgresql for the PostgreSQL tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "postgresql is not installed and we are not root: the PostgreSQL tests will be skipped"; fi

# The unit's tests run systemd-analyze (verify, security --offline); Debian's systemd has it.
systemd:
	@if command -v systemd-analyze >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing systemd for the unit's tests (systemd-analyze)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; \
	else echo "systemd-analyze is missing and we are not root: the unit's tests will be skipped"; fi

# The status page is tested in a real headless browser: Debian's chromium, driven by Playwright.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the status page's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is not installed and we are not root: the browser tests will be skipped"; fi

clean:
	rm -rf $(VENV) var .pytest_cache
