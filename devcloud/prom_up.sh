#!/bin/bash
# devcloud/prom_up.sh - start Debian's Prometheus (and node-exporter) on
# 127.0.0.1 without systemd. Idempotent: stops what a previous run started.
# Scrapes every second: itself, node-exporter (:9100) and the zeroops test
# exporter (ZEROOPS_EXPORTER_TARGET, default 127.0.0.1:9477; down when no
# test runs, which is fine). State in .devcloud/prom.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${DEVCLOUD_BASE:-$HERE/../.devcloud}
mkdir -p "$BASE/prom/data"; D=$(cd "$BASE/prom" && pwd)
PORT=${PROM_PORT:-9090}
EXPORTER=${ZEROOPS_EXPORTER_TARGET:-127.0.0.1:9477}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
log() { printf '[prom] %s\n' "$*"; }

if ! dpkg-query -W -f='${Status}\n' prometheus prometheus-node-exporter 2>/dev/null | grep -c '^install ok installed' | grep -q 2; then
    log "installing prometheus prometheus-node-exporter"
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus prometheus-node-exporter \
        >"$D/apt-install.log" 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends prometheus prometheus-node-exporter >>"$D/apt-install.log" 2>&1; } \
        || { tail -20 "$D/apt-install.log"; exit 1; }
    [ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
DEVCLOUD_BASE="$BASE" "$HERE/prom_down.sh" >/dev/null 2>&1 || true

cat >"$D/prometheus.yml" <<Y
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yml]
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$PORT']}]
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:9100']}]
  - job_name: zeroops
    static_configs: [{targets: ['$EXPORTER']}]
Y
cat >"$D/rules.yml" <<'Y'
groups:
  - name: zeroops
    rules:
      - alert: ZeroopsServiceHot
        expr: avg by (service) (zeroops_server_cpu_util) > 0.9
        for: 5s
        labels: {severity: warning}
        annotations: {summary: "service {{ $labels.service }} runs hot"}
Y
start() {  # start <name> <command...>
    local name=$1; shift
    ( cd "$D" && exec setsid "$@" </dev/null >>"$D/$name.log" 2>&1 ) &
    local pid=$!; sleep 0.05
    echo "$pid $(awk '{print $22}' /proc/$pid/stat 2>/dev/null)" >"$D/$name.pid"
}
start node_exporter prometheus-node-exporter --web.listen-address=127.0.0.1:9100
start prometheus prometheus --config.file="$D/prometheus.yml" --storage.tsdb.path="$D/data" \
    --storage.tsdb.retention.time=1d --web.listen-address=127.0.0.1:$PORT
end=$(( $(date +%s) + 60 ))
until curl -sf "http://127.0.0.1:$PORT/-/ready" >/dev/null; do
    [ "$(date +%s)" -lt "$end" ] || { tail -20 "$D/prometheus.log"; log "FATAL: prometheus not ready"; exit 1; }
    sleep 0.2
done
log "prometheus ready on http://127.0.0.1:$PORT (config $D/prometheus.yml)"
