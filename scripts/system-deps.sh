#!/usr/bin/env bash
# Debian packages the test suite needs besides Python: Chromium and ChromeDriver (the MLflow UI test),
# PostgreSQL (the tracking-server test) and a Java runtime (PySpark 4 needs Java 17+: the Spark tests). Installs only what is missing, so it is quick when all is
# there; needs root (or sudo) otherwise.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
# Any Java already there (JAVA_HOME or java on the PATH) is used as it is; only with none is Debian's added.
if [ -z "${JAVA_HOME:-}" ] || [ ! -x "${JAVA_HOME}/bin/java" ]; then
    command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "installing Debian packages: ${missing[*]}"
start=$(date +%s)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]} in $(( $(date +%s) - start )) s"
