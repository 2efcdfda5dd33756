#!/bin/bash
# devcloud/prom_down.sh - stop what prom_up.sh started (only its own pids).
HERE=$(cd "$(dirname "$0")" && pwd)
D=${DEVCLOUD_BASE:-$HERE/../.devcloud}/prom
[ -d "$D" ] || exit 0
for name in prometheus node_exporter; do
    f=$D/$name.pid
    [ -f "$f" ] || continue
    read -r p st <"$f"
    if [ -r "/proc/$p/stat" ] && [ "$(awk '{print $22}' "/proc/$p/stat")" = "$st" ]; then
        kill -TERM "$p"
        alive() { [ -r "/proc/$p/stat" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; }
        for _ in $(seq 40); do alive || break; sleep 0.25; done
        alive && kill -KILL "$p"
        echo "stopped $name ($p)"
    fi
    rm -f "$f"
done
exit 0
