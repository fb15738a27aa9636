#!/usr/bin/env bash
# Install what the local platform needs, idempotently (no Docker, package registries only).
#
#   scripts/bootstrap.sh [STEP ...]     STEP: all (default) | python | services | apt | kafka | spark | minio | dbt | web | browser
#     apt      Debian packages postgresql-15 postgresql-15-postgis-3 redis-server (apt-get update only if one is missing)
#     python   .venv + pip install -r requirements.txt (or requirements/base.in) + pip install -e . --no-deps
#     kafka    Kafka broker jars from Maven Central (platform/kafka/pom.xml) into $CANOPYWATCH_HOME/lib/kafka
#     spark    Spark job jars (Delta, S3A) from Maven Central (platform/spark/pom.xml) into $CANOPYWATCH_HOME/lib/spark
#     minio    MinIO server built with `go install` into $CANOPYWATCH_HOME/bin/minio
#     dbt      `dbt parse` of dbt/ into $CANOPYWATCH_HOME/dbt/target/manifest.json (Cosmos renders the DAG from it)
#     web      MapLibre GL JS from its npm package (`npm pack maplibre-gl@<pinned>`) into build/vendor/maplibre-gl (the API's /map)
#     browser  Debian's chromium (the browser test of the map; apt, only if missing)
#     services = apt kafka spark minio;  all = apt python kafka spark minio dbt web browser
#
# A step that already ran for the same inputs is skipped: stamp files under
# $CANOPYWATCH_HOME/stamps are keyed by a hash of each step's inputs. Each step prints one line;
# its tool output goes to $CANOPYWATCH_HOME/logs/bootstrap-<step>.log.
# Exit codes: 0 done, 1 a prerequisite is missing or a step failed, 2 bad usage.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLATFORM_HOME="${CANOPYWATCH_HOME:-$REPO/.platform}"
STAMPS="$PLATFORM_HOME/stamps"
LOGS="$PLATFORM_HOME/logs"
PYTHON="${PYTHON:-python3.11}"
VENV="$REPO/.venv"
APT_PACKAGES=(postgresql-15 postgresql-15-postgis-3 redis-server)  # redis-server: the cluster profile's Celery broker
MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
KAFKA_POM="$REPO/platform/kafka/pom.xml"
KAFKA_LIB="$PLATFORM_HOME/lib/kafka"
SPARK_POM="$REPO/platform/spark/pom.xml"
SPARK_LIB="$PLATFORM_HOME/lib/spark"
DBT_PROJECT="$REPO/dbt"
DBT_TARGET="$PLATFORM_HOME/dbt/target"
MINIO_BIN="$PLATFORM_HOME/bin/minio"
MAPLIBRE_VERSION="5.24.1"
MAPLIBRE_SHA512="HyiYBwtsbk3L1n1EPLJHWqdoyMiF80n7tEYXFZyu2m1TjvaNx6KMLiFeDdmszt1/mq2zvsR1TJuX/NMu5BonXQ=="  # npm dist.integrity
WEB_VENDOR="$REPO/build/vendor/maplibre-gl"

report() { printf '%-7s %s\n' "$1:" "$2"; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }
usage() { printf 'usage: scripts/bootstrap.sh [all|python|services|apt|kafka|spark|minio|dbt ...]\n' >&2; exit 2; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
stamped() { [[ -f "$STAMPS/$1.$2" ]]; }
stamp() { mkdir -p "$STAMPS"; rm -f "$STAMPS/$1".*; : >"$STAMPS/$1.$2"; }
run_logged() {  # run_logged STEP CMD... : output to the step's log, a clear line on failure
  local step=$1; shift
  mkdir -p "$LOGS"
  if ! "$@" >>"$LOGS/bootstrap-$step.log" 2>&1; then
    die "$step failed: $* (see $LOGS/bootstrap-$step.log)"
  fi
}

step_apt() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    report apt "skipped (already there: ${APT_PACKAGES[*]})"
    return
  fi
  need apt-get "install ${missing[*]} with your system's package manager"
  [[ $(id -u) -eq 0 ]] || die "installing ${missing[*]} needs root: sudo scripts/bootstrap.sh apt"
  run_logged apt apt-get update
  run_logged apt env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  report apt "done (installed ${missing[*]})"
}

step_python() {
  local requirements="$REPO/requirements.txt"
  [[ -f $requirements ]] || requirements="$REPO/requirements/base.in"
  [[ -f $requirements ]] || die "no requirements.txt (or requirements/base.in) in $REPO"
  need "$PYTHON" "install Python 3.11 (apt-get install python3.11 python3.11-venv) or set PYTHON=..."
  local key
  key=$(printf '%s\n%s\n' "$("$PYTHON" -V 2>&1)" "$(hash_of "$requirements" "$REPO/pyproject.toml")" | sha256sum | cut -c1-16)
  if stamped python "$key" && [[ -x $VENV/bin/python ]]; then
    report python "skipped (already there: $VENV for $(basename "$requirements"))"
    return
  fi
  [[ -x $VENV/bin/python ]] || run_logged python "$PYTHON" -m venv "$VENV"
  run_logged python "$VENV/bin/python" -m pip install -r "$requirements"
  run_logged python "$VENV/bin/python" -m pip install -e "$REPO" --no-deps
  stamp python "$key"
  report python "done ($VENV from $(basename "$requirements"))"
}

check_java() {
  need java "install a JDK/JRE >= 17 (apt-get install openjdk-17-jdk-headless)"
  local major
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [[ ${major:-0} -ge 17 ]] || die "Java >= 17 needed, found ${major:-unknown}: apt-get install openjdk-17-jdk-headless"
}

step_kafka() {
  local key
  key=$(hash_of "$KAFKA_POM")
  if stamped kafka "$key" && compgen -G "$KAFKA_LIB/kafka_2.13-*.jar" >/dev/null; then
    report kafka "skipped (already there: $KAFKA_LIB)"
    return
  fi
  check_java
  need mvn "install Maven >= 3.8 (apt-get install maven)"
  rm -rf "$KAFKA_LIB"
  mkdir -p "$KAFKA_LIB"
  run_logged kafka mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIB"
  stamp kafka "$key"
  report kafka "done ($(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars in $KAFKA_LIB)"
}

step_spark() {
  local key
  key=$(hash_of "$SPARK_POM")
  if stamped spark "$key" && compgen -G "$SPARK_LIB/delta-spark_*.jar" >/dev/null; then
    report spark "skipped (already there: $SPARK_LIB)"
    return
  fi
  check_java
  need mvn "install Maven >= 3.8 (apt-get install maven)"
  rm -rf "$SPARK_LIB"
  mkdir -p "$SPARK_LIB"
  run_logged spark mvn -q -B -f "$SPARK_POM" dependency:copy-dependencies -DoutputDirectory="$SPARK_LIB"
  stamp spark "$key"
  report spark "done ($(find "$SPARK_LIB" -name '*.jar' | wc -l) jars in $SPARK_LIB)"
}

minio_version_of() {  # the module version a Go binary was built from, or nothing
  go version -m "$1" 2>/dev/null | awk -v m="$MINIO_MODULE" '$1 == "mod" && $2 == m {print $3}'
}

step_minio() {
  local key="${MINIO_VERSION//[^A-Za-z0-9.-]/_}" gobin_minio
  if stamped minio "$key" && [[ -x $MINIO_BIN ]]; then
    report minio "skipped (already there: $MINIO_BIN $MINIO_VERSION)"
    return
  fi
  need go "install Go >= 1.24 (https://go.dev/dl) to build MinIO from source"
  mkdir -p "$(dirname "$MINIO_BIN")"
  gobin_minio="$(go env GOBIN)"
  gobin_minio="${gobin_minio:-$(go env GOPATH)/bin}/minio"
  if [[ -x $MINIO_BIN && $(minio_version_of "$MINIO_BIN") == "$MINIO_VERSION" ]]; then
    stamp minio "$key"
    report minio "skipped (already there: $MINIO_BIN $MINIO_VERSION)"
    return
  fi
  if [[ -x $gobin_minio && $(minio_version_of "$gobin_minio") == "$MINIO_VERSION" ]]; then
    cp "$gobin_minio" "$MINIO_BIN.tmp" && mv "$MINIO_BIN.tmp" "$MINIO_BIN"
    stamp minio "$key"
    report minio "done (copied $gobin_minio $MINIO_VERSION to $MINIO_BIN)"
    return
  fi
  run_logged minio env GOBIN="$(dirname "$MINIO_BIN")" go install "$MINIO_MODULE@$MINIO_VERSION"
  stamp minio "$key"
  report minio "done (built $MINIO_MODULE@$MINIO_VERSION into $MINIO_BIN)"
}

step_dbt() {
  local key
  key=$(find "$DBT_PROJECT" -type f \( -name '*.sql' -o -name '*.yml' \) -not -path '*/target/*' | sort | xargs cat | sha256sum | cut -c1-16)
  if stamped dbt "$key" && [[ -f $DBT_TARGET/manifest.json ]]; then
    report dbt "skipped (already there: $DBT_TARGET/manifest.json)"
    return
  fi
  [[ -x $VENV/bin/dbt ]] || die "dbt not in $VENV: run scripts/bootstrap.sh python first"
  mkdir -p "$DBT_TARGET"
  # parse only: no database connection is made, so no password is needed
  run_logged dbt "$VENV/bin/dbt" parse --project-dir "$DBT_PROJECT" --profiles-dir "$DBT_PROJECT" \
    --target-path "$DBT_TARGET" --log-path "$LOGS/dbt"
  stamp dbt "$key"
  report dbt "done ($DBT_TARGET/manifest.json)"
}

step_web() {
  if stamped web "$MAPLIBRE_VERSION" && [[ -f $WEB_VENDOR/maplibre-gl.js ]]; then
    report web "skipped (already there: $WEB_VENDOR maplibre-gl $MAPLIBRE_VERSION)"
    return
  fi
  local tmp tarball
  tmp=$(mktemp -d)
  tarball="$tmp/maplibre-gl-$MAPLIBRE_VERSION.tgz"
  if command -v npm >/dev/null 2>&1; then
    run_logged web npm pack --silent --pack-destination "$tmp" "maplibre-gl@$MAPLIBRE_VERSION"
  else  # the same tarball straight from the npm registry
    need "$PYTHON" "install Python 3.11 or npm to vendor MapLibre GL JS"
    run_logged web "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
      "https://registry.npmjs.org/maplibre-gl/-/maplibre-gl-$MAPLIBRE_VERSION.tgz" "$tarball"
  fi
  # the registry's integrity hash of the pinned version
  "$PYTHON" -c 'import base64, hashlib, sys; d = base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode(); sys.exit(d != sys.argv[2])' \
    "$tarball" "$MAPLIBRE_SHA512" || die "web: $tarball does not match the pinned sha512 of maplibre-gl $MAPLIBRE_VERSION"
  run_logged web tar -xzf "$tarball" -C "$tmp"
  mkdir -p "$WEB_VENDOR"
  cp "$tmp/package/dist/maplibre-gl.js" "$tmp/package/dist/maplibre-gl.css" "$tmp/package/LICENSE.txt" "$WEB_VENDOR/"
  rm -rf "$tmp"
  stamp web "$MAPLIBRE_VERSION"
  report web "done (maplibre-gl $MAPLIBRE_VERSION in $WEB_VENDOR)"
}

step_browser() {
  if command -v chromium >/dev/null 2>&1; then
    report browser "skipped (already there: $(command -v chromium))"
    return
  fi
  need apt-get "install chromium with your system's package manager"
  [[ $(id -u) -eq 0 ]] || die "installing chromium needs root: sudo scripts/bootstrap.sh browser"
  run_logged browser apt-get update
  run_logged browser env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
  report browser "done (installed chromium)"
}

main() {
  local steps=() arg
  (($# > 0)) || set -- all
  for arg in "$@"; do
    case $arg in
      all) steps+=(apt python kafka spark minio dbt web browser) ;;
      services) steps+=(apt kafka spark minio) ;;
      apt | python | kafka | spark | minio | dbt | web | browser) steps+=("$arg") ;;
      -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) printf 'bootstrap: unknown step %q\n' "$arg" >&2; usage ;;
    esac
  done
  mkdir -p "$PLATFORM_HOME"
  local done_steps=" " step
  for step in "${steps[@]}"; do
    [[ $done_steps == *" $step "* ]] && continue
    "step_$step"
    done_steps+="$step "
  done
}

main "$@"
