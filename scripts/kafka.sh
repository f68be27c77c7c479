#!/usr/bin/env bash
# The project's own local Apache Kafka: one combined broker + controller (KRaft) on 127.0.0.1,
# run from the jars on Maven Central (no tarball, no Docker). See docs/kafka-local.md.
#
#   scripts/kafka.sh fetch    download Kafka + a log4j2 binding into the cache (once)
#   scripts/kafka.sh start    fetch if needed, format storage once, start, wait until ready
#   scripts/kafka.sh stop     stop the broker started from this data dir (by its recorded PID)
#   scripts/kafka.sh status   "running"/"stopped", exit 0/1
#
# Environment (all optional):
#   KAFKA_VERSION          Kafka version from Maven Central               (4.1.1)
#   LOG4J_VERSION          log4j2 version for the logging binding (default: the one Kafka uses)
#   EVGATE_CACHE_DIR       cache root; jars go to $EVGATE_CACHE_DIR/kafka/<version>/libs
#                                                                         (<repo>/.cache)
#   KAFKA_PORT             PLAINTEXT listener port                        (9092)
#   KAFKA_CONTROLLER_PORT  controller listener port                       (KAFKA_PORT + 1)
#   KAFKA_DATA_DIR         storage, generated server.properties, kafka.log, kafka.pid
#                                                    (<repo>/.cache/kafka-data/<KAFKA_PORT>)
#   KAFKA_HEAP_OPTS        JVM heap options                               (-Xms256m -Xmx512m)
#   KAFKA_JVM_OPTS         other JVM options                  (G1, as Kafka's own scripts)
#   KAFKA_START_TIMEOUT    seconds to wait until a metadata request succeeds  (60)
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL       (30)
#   KAFKA_EXTRA_PROPERTIES file whose lines are appended to server.properties (later wins)
#   KAFKA_SCRAM_USERS      "name:password ..." SCRAM-SHA-256 and -512 users, added at format
#   KAFKA_OWNER_PID        stop this broker when that process is gone (private test brokers)
#   KAFKA_OWNER_CLEANUP    1: then also delete the data dir (only if named evgate-kafka-*)
#   PYTHON                 Python with confluent_kafka for the readiness check
#                                                                 (<repo>/.venv/bin/python)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
SUPPORT_DIR=$SCRIPT_DIR/kafka

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
CACHE_ROOT=${EVGATE_CACHE_DIR:-$REPO/.cache}
DIST_DIR=$CACHE_ROOT/kafka/$KAFKA_VERSION
LIBS_DIR=$DIST_DIR/libs
FETCH_MARKER=$DIST_DIR/.fetched

PORT=${KAFKA_PORT:-9092}
if [[ ! $PORT =~ ^[0-9]+$ ]]; then
    echo "evgate: KAFKA_PORT must be a number, got '$PORT'" >&2
    exit 2
fi
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
DATA_DIR=${KAFKA_DATA_DIR:-$REPO/.cache/kafka-data/$PORT}
PROPS=$DATA_DIR/server.properties
LOG_FILE=$DATA_DIR/kafka.log
PID_FILE=$DATA_DIR/kafka.pid
STORAGE_DIR=$DATA_DIR/storage
BOOTSTRAP=127.0.0.1:$PORT
START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
PY=${PYTHON:-$REPO/.venv/bin/python}

die() {
    echo "evgate: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- prerequisites

JAVA=java
if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
    JAVA=$JAVA_HOME/bin/java
fi

require_java() {
    local version major
    if ! command -v "$JAVA" >/dev/null 2>&1; then
        echo "evgate: Java 17+ is required to run the local Kafka: apt-get install openjdk-17-jre-headless" >&2
        exit 2
    fi
    # 'openjdk version "17.0.15" 2025-04-15' or 'java version "1.8.0_392"'
    version=$("$JAVA" -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)
    major=${version%%.*}
    if [[ $major == 1 ]]; then
        major=${version#1.}
        major=${major%%.*}
    fi
    if [[ ! $major =~ ^[0-9]+$ ]] || ((major < 17)); then
        echo "evgate: Java 17+ is required to run the local Kafka (found '${version:-unknown}' at $(command -v "$JAVA")): apt-get install openjdk-17-jre-headless" >&2
        exit 2
    fi
}

require_mvn() {
    if ! command -v mvn >/dev/null 2>&1; then
        echo "evgate: Maven is required to fetch the local Kafka from Maven Central: apt-get install maven" >&2
        exit 2
    fi
}

# Runs a command with an exclusive lock on FILE (fd 9), if flock(1) exists: two concurrent
# `start`s (e.g. parallel test sessions) must not launch two brokers on one data dir.
with_lock() {
    local file=$1
    shift
    if command -v flock >/dev/null 2>&1; then
        (
            flock -w 600 9 || die "could not lock $file within 600 s"
            "$@"
        ) 9>"$file"
    else
        "$@"
    fi
}

# ---------------------------------------------------------------- fetch

# The log4j2 version this Kafka itself uses (its POMs declare log4j-api/-core, runtime scope).
detect_log4j_version() {
    local list=$1 version
    mvn_quiet -P '!logging' dependency:list -DincludeScope=runtime \
        -DincludeGroupIds=org.apache.logging.log4j -DoutputFile="$list" >&2 ||
        die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see above)"
    version=$(grep -o 'org\.apache\.logging\.log4j:log4j-core:jar:[^: ]*' "$list" | head -n 1 | cut -d: -f4 || true)
    echo "${version:-2.24.3}"
}

mvn_quiet() {
    local out status=0
    out=$(mktemp)
    # -q shows errors only; the output goes to the terminal only when Maven fails.
    mvn -B -q -Dstyle.color=never -f "$SUPPORT_DIR/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        "$@" >"$out" 2>&1 || status=$?
    if ((status != 0)); then
        sed 's/\x1b\[[0-9;]*m//g' "$out" >&2
    fi
    rm -f "$out"
    return "$status"
}

do_fetch() {
    local log4j_version tmp want
    log4j_version=${LOG4J_VERSION:-}
    if [[ -z $log4j_version ]]; then
        case $KAFKA_VERSION in
            4.0.* | 4.1.*) log4j_version=2.24.3 ;;
        esac
    fi
    want="kafka=$KAFKA_VERSION log4j=${log4j_version:-auto}"
    if [[ -f $FETCH_MARKER && -d $LIBS_DIR ]] && grep -qxF "$want" "$FETCH_MARKER"; then
        return 0
    fi
    require_mvn
    echo "evgate: fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS_DIR ..." >&2
    mkdir -p "$DIST_DIR"
    tmp=$(mktemp -d "$DIST_DIR/libs.tmp.XXXXXX")
    if [[ -z $log4j_version ]]; then
        log4j_version=$(detect_log4j_version "$tmp/log4j.list") || {
            rm -rf "$tmp"
            exit 1
        }
        rm -f "$tmp/log4j.list"
    fi
    if ! mvn_quiet dependency:copy-dependencies -DincludeScope=runtime \
        -Dlog4j.version="$log4j_version" -DoutputDirectory="$tmp"; then
        rm -rf "$tmp"
        die "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see above)"
    fi
    local jar
    for jar in "kafka_2.13-$KAFKA_VERSION.jar" "log4j-api-$log4j_version.jar" \
        "log4j-core-$log4j_version.jar" "log4j-slf4j-impl-$log4j_version.jar"; do
        [[ -f $tmp/$jar ]] || {
            rm -rf "$tmp"
            die "fetch is missing $jar: check KAFKA_VERSION / LOG4J_VERSION"
        }
    done
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    echo "$want" >"$FETCH_MARKER"
    echo "evgate: fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars (log4j $log4j_version)" >&2
}

cmd_fetch() {
    mkdir -p "$CACHE_ROOT/kafka"
    with_lock "$CACHE_ROOT/kafka/.fetch-$KAFKA_VERSION.lock" do_fetch
}

# ---------------------------------------------------------------- probes

HAVE_CK=
have_confluent_kafka() {
    if [[ -z $HAVE_CK ]]; then
        HAVE_CK=no
        if [[ -x $PY ]] || command -v "$PY" >/dev/null 2>&1; then
            if "$PY" -c 'import confluent_kafka' >/dev/null 2>&1; then
                HAVE_CK=yes
            fi
        fi
    fi
    [[ $HAVE_CK == yes ]]
}

# 0 if a metadata request to $1 succeeds within $2 seconds.
metadata_ok() {
    # shellcheck disable=SC2016 # Python code, not shell
    "$PY" -c '
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=float(sys.argv[2]))
sys.exit(0 if md.brokers else 1)
' "$1" "$2" >/dev/null 2>&1
}

# 0 if something accepts TCP connections on 127.0.0.1:$1.
tcp_open() {
    # shellcheck disable=SC2016 # $1 belongs to the inner shell
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" >/dev/null 2>&1
}

# 0 if 127.0.0.1:$1 answers a Kafka ApiVersions request (used when no Python has
# confluent_kafka): size 14, api_key 18, version 0, correlation id 42, client id "evgt".
kafka_protocol_ok() {
    local reply
    # shellcheck disable=SC2016 # $1 belongs to the inner shell
    reply=$(timeout 3 bash -c '
exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
printf "\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x04evgt" >&3
head -c 8 <&3 | od -An -tx1' _ "$1" 2>/dev/null) || return 1
    [[ $(echo "$reply" | tr -d ' \n') == ????????0000002a ]]
}

# 0 if the broker on $PORT is ready for clients.
broker_ready() {
    tcp_open "$PORT" || return 1
    if have_confluent_kafka; then
        metadata_ok "$BOOTSTRAP" "${1:-3}"
    else
        kafka_protocol_ok "$PORT"
    fi
}

# PID from the pid file if that process is alive and is our Kafka, else empty.
our_pid() {
    local pid
    [[ -f $PID_FILE ]] || return 0
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    # Guards against a recycled PID: the command line must be kafka.Kafka with our properties.
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS" || return 0
    fi
    echo "$pid"
}

# ---------------------------------------------------------------- start

render_properties() {
    local tmpl content
    tmpl=$(cat "$SUPPORT_DIR/server.properties.tmpl")
    content=${tmpl//@PORT@/"$PORT"}
    content=${content//@CONTROLLER_PORT@/"$CONTROLLER_PORT"}
    content=${content//@LOG_DIRS@/"$STORAGE_DIR"}
    {
        printf '%s\n' "$content"
        if [[ -n ${KAFKA_EXTRA_PROPERTIES:-} ]]; then
            [[ -f $KAFKA_EXTRA_PROPERTIES ]] || die "KAFKA_EXTRA_PROPERTIES: no such file: $KAFKA_EXTRA_PROPERTIES"
            printf '\n# ---- appended from KAFKA_EXTRA_PROPERTIES=%s\n' "$KAFKA_EXTRA_PROPERTIES"
            cat "$KAFKA_EXTRA_PROPERTIES"
            printf '\n'
        fi
    } >"$PROPS.tmp"
    mv "$PROPS.tmp" "$PROPS"
}

# A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
random_cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
        [[ $id != -* ]] && break
    done
    echo "$id"
}

format_storage() {
    local -a scram=()
    local entry name password
    if [[ -f $STORAGE_DIR/meta.properties ]]; then
        if [[ -n ${KAFKA_SCRAM_USERS:-} && ${KAFKA_SCRAM_USERS} != "$(cat "$DATA_DIR/scram-users" 2>/dev/null || true)" ]]; then
            echo "evgate: warning: KAFKA_SCRAM_USERS is applied only when the storage is formatted; delete $DATA_DIR to apply it" >&2
        fi
        return 0
    fi
    for entry in ${KAFKA_SCRAM_USERS:-}; do
        name=${entry%%:*}
        password=${entry#*:}
        [[ -n $name && $entry == *:* ]] || die "KAFKA_SCRAM_USERS entries are name:password, got '$entry'"
        scram+=(--add-scram "SCRAM-SHA-256=[name=$name,password=$password]")
        scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$password]")
    done
    if ! "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$SUPPORT_DIR/log4j2.properties" \
        -cp "$LIBS_DIR/*" kafka.tools.StorageTool format --standalone \
        -t "$(random_cluster_id)" -c "$PROPS" ${scram[@]+"${scram[@]}"} >"$DATA_DIR/format.log" 2>&1; then
        cat "$DATA_DIR/format.log" >&2
        die "formatting $STORAGE_DIR failed (output above)"
    fi
    printf '%s' "${KAFKA_SCRAM_USERS:-}" >"$DATA_DIR/scram-users"
}

launch() {
    local -a heap jvm
    read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
    read -r -a jvm <<<"${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
    [[ -f $LOG_FILE ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
    rm -f "$PID_FILE"
    # setsid: own session, so the broker outlives the calling shell (and its SIGHUP/SIGINT);
    # the inner shell writes its own PID, then exec keeps that PID for the JVM. 9>&-: the JVM
    # must not inherit the lock on the data dir (it would hold it for its whole life).
    # log4j2.shutdownHookEnabled=false: otherwise log4j stops logging while Kafka's own
    # shutdown hook is still running, and kafka.log loses the end of the shutdown.
    # shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' kafka-launch "$PID_FILE" \
        "$JAVA" "${heap[@]}" "${jvm[@]}" \
        -Dlog4j2.configurationFile="$SUPPORT_DIR/log4j2.properties" \
        -Dlog4j2.shutdownHookEnabled=false \
        -cp "$LIBS_DIR/*" kafka.Kafka "$PROPS" >"$LOG_FILE" 2>&1 </dev/null 9>&- &
    local i
    for ((i = 0; i < 50; i++)); do
        if [[ -s $PID_FILE ]]; then
            if [[ -n ${KAFKA_OWNER_PID:-} ]]; then
                setsid nohup bash "$SCRIPT_DIR/kafka.sh" _watch "$KAFKA_OWNER_PID" "$(cat "$PID_FILE")" \
                    >>"$DATA_DIR/watchdog.log" 2>&1 </dev/null 9>&- &
            fi
            return 0
        fi
        sleep 0.1
    done
    die "the broker process did not start (no $PID_FILE)"
}

# Internal (`kafka.sh _watch OWNER KAFKA_PID`, started by launch when KAFKA_OWNER_PID is set):
# once the owner process is gone (e.g. a test session killed by a timeout before its cleanup
# ran), stop the broker and, with KAFKA_OWNER_CLEANUP=1, delete a data dir named evgate-kafka-*.
cmd_watch() {
    local owner=$1 kafka_pid=$2
    while kill -0 "$owner" 2>/dev/null; do
        kill -0 "$kafka_pid" 2>/dev/null || return 0
        sleep 2
    done
    [[ $(our_pid) == "$kafka_pid" ]] || return 0
    echo "evgate: owner process $owner is gone; stopping Kafka (PID $kafka_pid)"
    with_lock "$DATA_DIR/.lock" do_stop || true
    if [[ ${KAFKA_OWNER_CLEANUP:-} == 1 && $(basename "$DATA_DIR") == evgate-kafka-* ]]; then
        rm -rf "$DATA_DIR"
    fi
}

wait_ready() {
    local deadline=$((SECONDS + START_TIMEOUT)) pid
    while ((SECONDS < deadline)); do
        pid=$(our_pid)
        if [[ -z $pid ]]; then
            echo "evgate: Kafka exited during startup; last lines of $LOG_FILE:" >&2
            tail -n 40 "$LOG_FILE" >&2 || true
            exit 1
        fi
        if broker_ready 2; then
            # Without confluent_kafka the protocol probe may answer a little early: also wait
            # for the broker's own "started" line.
            if have_confluent_kafka || grep -q 'Kafka Server started' "$LOG_FILE"; then
                return 0
            fi
        fi
        sleep 0.5
    done
    echo "evgate: Kafka did not answer on $BOOTSTRAP within ${START_TIMEOUT}s (still running as PID $(our_pid)); last lines of $LOG_FILE:" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    exit 1
}

do_start() {
    local pid
    if broker_ready 3; then
        echo "Kafka already running on $BOOTSTRAP"
        return 0
    fi
    pid=$(our_pid)
    if [[ -n $pid ]]; then
        echo "evgate: Kafka (PID $pid) is starting; waiting for it" >&2
    else
        local p
        for p in "$PORT" "$CONTROLLER_PORT"; do
            if tcp_open "$p"; then
                die "port 127.0.0.1:$p is in use by something that does not answer as Kafka; choose another KAFKA_PORT / KAFKA_CONTROLLER_PORT"
            fi
        done
        require_java
        cmd_fetch
        mkdir -p "$STORAGE_DIR"
        render_properties
        format_storage
        launch
    fi
    wait_ready
    if grep -q 'SLF4J: Defaulting to no-operation' "$LOG_FILE"; then
        echo "evgate: warning: Kafka found no SLF4J 1.x binding and logs nothing; refetch with: rm -rf $DIST_DIR" >&2
    fi
    echo "Kafka ready on $BOOTSTRAP"
}

cmd_start() {
    mkdir -p "$DATA_DIR"
    with_lock "$DATA_DIR/.lock" do_start
}

# ---------------------------------------------------------------- stop / status

do_stop() {
    local pid deadline
    pid=$(our_pid)
    if [[ -z $pid ]]; then
        rm -f "$PID_FILE"
        if broker_ready 2; then
            echo "evgate: something answers on $BOOTSTRAP but was not started from $DATA_DIR; not stopping it" >&2
            return 1
        fi
        echo "Kafka not running on $BOOTSTRAP"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "evgate: Kafka (PID $pid) still running after ${STOP_TIMEOUT}s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
    echo "Kafka stopped on $BOOTSTRAP"
}

cmd_stop() {
    if [[ ! -d $DATA_DIR ]]; then
        echo "Kafka not running on $BOOTSTRAP"
        return 0
    fi
    with_lock "$DATA_DIR/.lock" do_stop
}

cmd_status() {
    local pid
    pid=$(our_pid)
    if [[ -n $pid ]]; then
        if broker_ready 2; then
            echo "running on $BOOTSTRAP (PID $pid, data dir $DATA_DIR)"
        else
            echo "running (PID $pid) but not answering on $BOOTSTRAP yet"
        fi
        return 0
    fi
    if broker_ready 2; then
        echo "running on $BOOTSTRAP (not started from $DATA_DIR)"
        return 0
    fi
    echo "stopped ($BOOTSTRAP)"
    return 1
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    fetch) require_java && cmd_fetch ;;
    _watch) cmd_watch "$2" "$3" ;;
    *)
        echo "usage: $0 {start|stop|status|fetch}" >&2
        exit 2
        ;;
esac
