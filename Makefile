# Two commands: `make run` and `make test`. Everything else here is what they need.
VENV := .venv
BIN := $(VENV)/bin
PROXY := deploy/proxy/node_modules/.bin/configurable-http-proxy
OIDC_PROVIDER := hub/datapilot_hub/tests/oidc_provider/node_modules/oidc-provider/package.json
BROWSER_TESTS := hub/datapilot_hub/tests/browser
PLAYWRIGHT := $(BROWSER_TESTS)/node_modules/playwright-core/package.json
export DATAPILOT_HOME ?= $(CURDIR)/.datapilot

.PHONY: run test install proxy oidc-provider browser chromium migrate postgres redis lint lab-test clean

run: install proxy migrate
	$(BIN)/jupyterhub -f jupyterhub_config.py

# the catalog tests run on SQLite and on PostgreSQL; here PostgreSQL is required, and so
# are the browser journeys (test_browser.py)
test: export DATAPILOT_TEST_REQUIRE_POSTGRES = 1
test: export DATAPILOT_TEST_REQUIRE_BROWSER = 1
test: install proxy oidc-provider browser postgres redis lint lab-test
	$(BIN)/python -m pytest hub/datapilot_hub/tests datapilot_kernel/tests datapilot_contract/tests datapilot_charts/tests -p no:jupyter_server $(PYTEST_ARGS)
	$(BIN)/python -m pytest extensions/datapilot/tests $(PYTEST_ARGS)

install: $(VENV)/.installed
# shared-data (the server extension's enabling file, the prebuilt Lab extension) is copied
# at install time; the Python build builds the Lab extension (npm, see pyproject.toml), and
# removing the last build makes it build again whatever of its sources changed
LAB_SOURCES := extensions/package.json extensions/package-lock.json extensions/tsconfig.json \
  $(wildcard extensions/src/*.ts extensions/src/*.tsx extensions/style/* extensions/schema/*)
$(VENV)/.installed: pyproject.toml extensions/jupyter-config/server-config/datapilot.json deploy/scripts/venv $(LAB_SOURCES)
	deploy/scripts/venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	rm -rf extensions/datapilot/labextension
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

proxy: $(PROXY)
$(PROXY): deploy/proxy/package.json deploy/proxy/package-lock.json
	cd deploy/proxy && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# the OpenID Connect provider the login tests start on loopback
oidc-provider: $(OIDC_PROVIDER)
$(OIDC_PROVIDER): hub/datapilot_hub/tests/oidc_provider/package.json hub/datapilot_hub/tests/oidc_provider/package-lock.json
	cd hub/datapilot_hub/tests/oidc_provider && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# the browser journeys: playwright-core from npm drives Debian's chromium (a browser
# download of playwright's own cannot be had here)
browser: chromium $(PLAYWRIGHT)
$(PLAYWRIGHT): $(BROWSER_TESTS)/package.json $(BROWSER_TESTS)/package-lock.json
	cd $(BROWSER_TESTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

chromium:
	@command -v chromium >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@chromium --version

migrate: install
	$(BIN)/datapilot-migrate

# PostgreSQL runs on this kind of machine; start the local cluster when it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  for v in $$(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect $$v main start; done; \
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@pg_isready -h 127.0.0.1 -p 5432

# the rate-limit tests also run against a real Redis: start one when none answers
redis:
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { \
	  mkdir -p /var/lib/redis /var/log/redis; \
	  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
	    --dir /var/lib/redis --logfile /var/log/redis/ci.log; \
	  for i in $$(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.2; done; }
	@redis-cli -h 127.0.0.1 ping

lint: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	cd extensions && npm run --silent lint

# the Lab extension's TypeScript unit tests (vitest; its node_modules come with the build)
lab-test: install
	cd extensions && npm test

clean:
	rm -rf $(VENV) deploy/proxy/node_modules hub/datapilot_hub/tests/oidc_provider/node_modules \
	  $(BROWSER_TESTS)/node_modules test-artifacts \
	  extensions/node_modules extensions/lib extensions/datapilot/labextension
