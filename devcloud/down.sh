#!/bin/bash
# devcloud/down.sh - stop everything devcloud/up.sh started, using only its pid files
# ("PID STARTTIME"; a pid whose start time no longer matches is left alone).
# Each daemon was started with setsid, so its process group holds its workers.
# Data stays in .devcloud/run (DEVCLOUD_RESET=1 devcloud/up.sh or rm -rf it to wipe).
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${DEVCLOUD_BASE:-$HERE/../.devcloud}
R=$BASE/run
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

ours() {  # ours <name> -> echo pid if the pid file still names a live process we started
    local f=$R/pid/$1.pid pid st
    [ -f "$f" ] || return 1
    read -r pid st <"$f"
    [ -n "$pid" ] && [ -r /proc/$pid/stat ] || { rm -f "$f"; return 1; }
    [ -z "$st" ] || [ "$(awk '{print $22}' /proc/$pid/stat)" = "$st" ] || { rm -f "$f"; return 1; }
    # a zombie is dead already
    [ "$(awk '{print $3}' /proc/$pid/stat)" != Z ] || { rm -f "$f"; return 1; }
    echo "$pid"
}

stop() {  # stop <name> [grace seconds]
    local name=$1 grace=${2:-20} pid i
    pid=$(ours "$name") || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < grace * 4; i++)); do
        [ "$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)" = "" ] && break
        [ "$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)" = Z ] && break
        sleep 0.25
    done
    if [ -r /proc/$pid/stat ] && [ "$(awk '{print $3}' /proc/$pid/stat)" != Z ]; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
    # stragglers left in the group (e.g. uwsgi workers)
    kill -KILL -- "-$pid" 2>/dev/null
    rm -f "$R/pid/$name.pid"
    echo "stopped $name ($pid)"
}

for f in "$R"/pid/nova-compute-*.pid; do
    [ -e "$f" ] && stop "$(basename "$f" .pid)" 20
done
for s in nova-compute nova-api nova-scheduler nova-conductor glance-api placement keystone neutron-stub; do
    stop "$s" 20
done
if pid=$(ours rabbitmq); then
    ( . "$R/rabbitmq/env.sh"; timeout 60 /usr/lib/rabbitmq/bin/rabbitmqctl -q shutdown >/dev/null 2>&1 )
    stop rabbitmq 20
fi
stop epmd 5
stop mysqld 60
exit 0
