#!/usr/bin/env bash
# What the test suite needs beyond .venv: system packages from Debian (installed when running
# as root, e.g. in CI; otherwise listed with the command to run) and node tools from npm.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v curl >/dev/null || need_apt+=(curl)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
[ -x /usr/lib/postgresql/15/bin/initdb ] || command -v initdb >/dev/null || need_apt+=(postgresql)
command -v npm >/dev/null || need_apt+=(npm)

if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing system packages: ${need_apt[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    else
        echo "evgate: the tests need: ${need_apt[*]} (sudo apt-get install -y ${need_apt[*]})" >&2
        exit 2
    fi
fi

# newman runs the Gravitee Postman collection against evgate (tests/integration/test_postman.py).
NODE_DIR=$REPO/.cache/node
if [ ! -x "$NODE_DIR/node_modules/.bin/newman" ]; then
    echo "installing newman into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    npm install --silent --no-audit --no-fund --prefix "$NODE_DIR" newman@6 >/dev/null
fi
