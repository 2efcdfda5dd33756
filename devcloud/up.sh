#!/bin/bash
# devcloud/up.sh - install, configure and start a local OpenStack (Zed, Debian
# bookworm packages) on 127.0.0.1: Keystone, Placement, Glance, Nova (api, conductor,
# scheduler, compute with the fake virt driver), MariaDB, RabbitMQ and a
# read-only Neutron API stub.  No systemd needed: every daemon is started here
# with setsid and its pid written to $R/pid; devcloud/down.sh stops them.
# State lives in <repo>/.devcloud (gitignored; override with DEVCLOUD_BASE).
# After the services are up it seeds what zeroops' live tests use: flavors
# zeroops.small / zeroops.big, image zeroops-tiny, raised admin quotas.
#
# Idempotent: re-running stops what a previous run started and starts again,
# keeping the databases (set DEVCLOUD_RESET=1 to wipe all state first).
# Prints the clouds.yaml / OS_* variables at the end.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${DEVCLOUD_BASE:-$HERE/../.devcloud}
mkdir -p "$BASE"; BASE=$(cd "$BASE" && pwd)
R=$BASE/run
COMPUTES=${DEVCLOUD_COMPUTES:-2}           # fake hypervisors (nova-compute services)
PW=${DEVCLOUD_PASSWORD:-admin}              # admin + service users' password
DBURL=mysql+pymysql://openstack:openstack@127.0.0.1
PY=/usr/bin/python3                        # Debian's python (not pyenv's)
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV || true
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
T0=$(date +%s%N)
elapsed() { local d=$(( ($(date +%s%N) - T0) / 100000000 )); echo "$((d / 10)).$((d % 10))"; }
log() { printf '[up %6ss] %s\n' "$(elapsed)" "$*"; }
die() { echo "[up] FATAL: $*" >&2; exit 1; }

wait_for() {  # wait_for <seconds> <description> <command...>
    local n=$1 what=$2; shift 2
    local end=$(( $(date +%s) + n ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || die "timeout waiting for $what (see $R/log)"
        sleep 0.5
    done
    log "$what ready"
}

start() {  # start <name> <command...>: run detached in its own session, pid -> $R/pid/<name>.pid
    local name=$1; shift
    ( cd "$R" && exec setsid "$@" </dev/null >>"$R/log/$name.out" 2>&1 ) &
    local pid=$!
    sleep 0.05
    echo "$pid $(awk '{print $22}' /proc/$pid/stat 2>/dev/null)" >"$R/pid/$name.pid"
}

# ---------------------------------------------------------------- 0. packages
PKGS="python3-nova python3-keystone python3-placement python3-glance python3-pymysql
      uwsgi-core uwsgi-plugin-python3 rabbitmq-server mariadb-server curl"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
    log "installing: $(echo $missing)"
    # never let package scripts start daemons (there is no init system anyway)
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || log "apt-get update failed; trying with the package lists at hand"
    apt-get install -y -q --no-install-recommends $missing >"$BASE/apt-install.log" 2>&1 \
        || { sleep 5; apt-get update -qq; apt-get install -y -q --no-install-recommends $missing >>"$BASE/apt-install.log" 2>&1; } \
        || { tail -30 "$BASE/apt-install.log"; die "apt-get install failed"; }
    [ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    log "packages installed"
fi
# paste ini files live in nova-common / glance-common, whose maintainer scripts
# (dbconfig-common, debconf) we do not want: unpack them without installing.
mkdir -p "$BASE/debs"
if [ ! -f "$BASE/debs/x/usr/share/nova-common/api-paste.ini" ] || [ ! -f "$BASE/debs/x/usr/share/glance-common/glance-api-paste.ini" ]; then
    (cd "$BASE/debs" && apt-get download -q nova-common glance-common >/dev/null 2>&1) || die "apt-get download failed"
    for f in "$BASE"/debs/nova-common_*.deb "$BASE"/debs/glance-common_*.deb; do dpkg-deb -x "$f" "$BASE/debs/x"; done
fi

# ---------------------------------------------------------------- 1. stop old, layout
DEVCLOUD_BASE="$BASE" "$HERE/down.sh" >/dev/null 2>&1 || true
if [ "${DEVCLOUD_RESET:-0}" = 1 ]; then log "DEVCLOUD_RESET=1: wiping $R"; rm -rf "$R"; fi
mkdir -p "$R"/{bin,etc/keystone,etc/placement,etc/glance,etc/nova,etc/openstack,log,pid,lock,rabbitmq,mysql} \
         "$R"/data/{nova/instances,glance/images,glance/staging,glance/tasks}

# console-script wrappers for the binaries that live in the daemon packages
mk() { printf '#!%s\nimport sys\nfrom %s import main\nsys.exit(main())\n' "$PY" "$2" >"$R/bin/$1"; chmod +x "$R/bin/$1"; }
mk glance-manage glance.cmd.manage;   mk glance-api glance.cmd.api
mk nova-manage nova.cmd.manage;       mk nova-api nova.cmd.api
mk nova-conductor nova.cmd.conductor; mk nova-scheduler nova.cmd.scheduler
mk nova-compute nova.cmd.compute;     mk nova-status nova.cmd.status
cp "$BASE/debs/x/usr/share/nova-common/api-paste.ini" "$R/etc/nova/api-paste.ini"
cp "$BASE/debs/x/usr/share/glance-common/glance-api-paste.ini" "$R/etc/glance/glance-api-paste.ini"

# ---------------------------------------------------------------- 2. helper programs
cat >"$R/bin/neutron-stub" <<'EOF'
#!/usr/bin/python3
"""Read-only stand-in for the Neutron API (every list is empty, every create 501).
Nova Zed always calls a 'network' endpoint (server show -> security groups,
delete/reboot -> list_ports) even for servers booted with networks='none'."""
import json, re, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse
QUOTA = {k: -1 for k in ("network", "subnet", "port", "router", "floatingip",
                          "security_group", "security_group_rule")}
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def _err(self, code, t, msg):
        self._send(code, {"NeutronError": {"type": t, "message": msg, "detail": ""}})
    def do_GET(self):
        path = urlparse(self.path).path.rstrip('/')
        if path == '':
            return self._send(200, {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
                {"rel": "self", "href": "http://127.0.0.1:9696/v2.0/"}]}]})
        if path == '/v2.0':
            return self._send(200, {"resources": []})
        if re.match(r'^/v2\.0/quotas/[^/]+?(/details)?(\.json)?$', path):
            return self._send(200, {"quota": QUOTA})
        m = re.match(r'^/v2\.0/([a-z_-]+?)(\.json)?$', path)
        if m:
            return self._send(200, {m.group(1).replace('-', '_'): []})
        self._err(404, "NotFound", "not found (neutron stub)")
    def do_POST(self):
        n = int(self.headers.get('Content-Length') or 0)
        if n:
            self.rfile.read(n)
        self._err(501, "NotImplemented", "neutron stub is read-only")
    do_PUT = do_POST
    def do_DELETE(self):
        self._err(404, "NotFound", "not found (neutron stub)")
    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))
ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 9696), H).serve_forever()
EOF
cat >"$R/bin/os-helper" <<'EOF'
#!/usr/bin/python3
"""bootstrap: idempotently create service project/users/roles/services/endpoints.
wait-compute PW SECONDS N: wait until nova-{conductor,scheduler} and N nova-compute
hosts are up and each compute node is a resource provider with inventory."""
import sys, time
from keystoneauth1 import session
from keystoneauth1.identity import v3
KS = 'http://127.0.0.1:5000/v3'
cmd, PW = sys.argv[1], sys.argv[2]
s = session.Session(auth=v3.Password(auth_url=KS, username='admin', password=PW, project_name='admin',
                                     user_domain_id='default', project_domain_id='default'))
def get(path, key, **q):
    return s.get(KS + path, params=q).json()[key]
def ensure(path, key, match, body):
    for item in get(path, key, **match):
        return item
    return s.post(KS + path, json={key[:-1]: body}).json()[key[:-1]]
if cmd == 'bootstrap':
    project = ensure('/projects', 'projects', {'name': 'service'}, {'name': 'service', 'domain_id': 'default'})
    for name in ('reader', 'member', 'service'):
        ensure('/roles', 'roles', {'name': name}, {'name': name})
    roles = [get('/roles', 'roles', name=n)[0] for n in ('admin', 'service')]
    for user, stype, url in [('nova', 'compute', 'http://127.0.0.1:8774/v2.1'),
                             ('placement', 'placement', 'http://127.0.0.1:8778'),
                             ('glance', 'image', 'http://127.0.0.1:9292'),
                             ('neutron', 'network', 'http://127.0.0.1:9696')]:
        u = ensure('/users', 'users', {'name': user, 'domain_id': 'default'},
                   {'name': user, 'password': PW, 'domain_id': 'default', 'default_project_id': project['id']})
        for role in roles:
            s.put(KS + '/projects/%s/users/%s/roles/%s' % (project['id'], u['id'], role['id']))
        svc = ensure('/services', 'services', {'type': stype}, {'name': user, 'type': stype, 'enabled': True})
        for iface in ('public', 'internal', 'admin'):
            ensure('/endpoints', 'endpoints',
                   {'service_id': svc['id'], 'interface': iface, 'region_id': 'RegionOne'},
                   {'service_id': svc['id'], 'interface': iface, 'region_id': 'RegionOne', 'url': url, 'enabled': True})
elif cmd == 'seed':
    # flavors, a tiny image and roomy admin quotas for zeroops' live tests
    N = 'http://127.0.0.1:8774/v2.1'
    have = {f['name'] for f in s.get(N + '/flavors').json()['flavors']}
    # zeroops.nohost: more disk than any hypervisor has (disk is not a Nova quota): NoValidHost
    for name, vcpus, ram, disk in [('zeroops.small', 1, 512, 1), ('zeroops.big', 2, 1024, 2),
                                   ('zeroops.nohost', 1, 512, 900000)]:
        if name not in have:
            s.post(N + '/flavors', json={'flavor': {'name': name, 'vcpus': vcpus, 'ram': ram, 'disk': disk}}).raise_for_status()
    G = 'http://127.0.0.1:9292/v2/images'
    imgs = s.get(G, params={'name': 'zeroops-tiny'}).json()['images']
    if not [i for i in imgs if i['status'] == 'active']:
        for i in imgs:
            s.delete(G + '/' + i['id'])
        img = s.post(G, json={'name': 'zeroops-tiny', 'disk_format': 'raw', 'container_format': 'bare',
                              'visibility': 'public'}).json()
        s.put(G + '/' + img['id'] + '/file', data=b'\0' * 65536,
              headers={'Content-Type': 'application/octet-stream'}).raise_for_status()
    pid = s.get_project_id()
    s.put(N + '/os-quota-sets/' + pid, json={'quota_set': {'instances': 40, 'cores': 80, 'ram': 81920}}).raise_for_status()
    print('seeded flavors, image zeroops-tiny, quotas for project', pid)
elif cmd == 'wait-compute':
    deadline = time.time() + float(sys.argv[3])
    computes = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    want = {'nova-conductor', 'nova-scheduler'}
    while True:
        try:
            svcs = s.get('http://127.0.0.1:8774/v2.1/os-services').json()['services']
            up = {x['binary'] for x in svcs if x['state'] == 'up' and x['status'] == 'enabled'}
            hosts = {x['host'] for x in svcs if x['binary'] == 'nova-compute' and x['state'] == 'up'}
            rps = s.get('http://127.0.0.1:8778/resource_providers',
                        headers={'OpenStack-API-Version': 'placement 1.14'}).json()['resource_providers']
            with_inv = [rp for rp in rps if s.get('http://127.0.0.1:8778/resource_providers/%s/inventories'
                                                  % rp['uuid']).json()['inventories']]
            if want <= up and len(hosts) >= computes and len(with_inv) >= computes:
                break
        except Exception as e:
            pass
        if time.time() > deadline:
            sys.exit('timeout: services up=%s compute hosts=%s' % (locals().get('up'), locals().get('hosts')))
        time.sleep(1)
EOF
chmod +x "$R/bin/neutron-stub" "$R/bin/os-helper"

# ---------------------------------------------------------------- 3. configuration
cat >"$R/etc/my.cnf" <<EOF
[mysqld]
datadir = $R/mysql/data
socket = $R/mysql/mysqld.sock
pid-file = $R/pid/mysqld.real.pid
bind-address = 127.0.0.1
port = 3306
user = root
log-error = $R/log/mysqld.err
skip-name-resolve
innodb_buffer_pool_size = 128M
innodb_flush_log_at_trx_commit = 2
max_connections = 500
performance_schema = OFF
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
[client]
socket = $R/mysql/mysqld.sock
EOF

cat >"$R/rabbitmq/env.sh" <<EOF
export HOME=$R/rabbitmq
export RABBITMQ_NODENAME=rabbit@localhost
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=5672
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT=4369
export RABBITMQ_DIST_PORT=25672
export RABBITMQ_MNESIA_BASE=$R/rabbitmq/mnesia
export RABBITMQ_LOG_BASE=$R/log/rabbitmq
export RABBITMQ_CONFIG_FILE=$R/rabbitmq/rabbitmq
export RABBITMQ_ENABLED_PLUGINS_FILE=$R/rabbitmq/enabled_plugins
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
echo '[].' >"$R/rabbitmq/enabled_plugins"
printf 'listeners.tcp.default = 127.0.0.1:5672\nloopback_users.guest = true\n' >"$R/rabbitmq/rabbitmq.conf"

authtoken() {  # keystone_authtoken / keystoneauth options for service user $1
cat <<EOF
auth_url = http://127.0.0.1:5000/v3
auth_type = password
username = $1
password = $PW
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
EOF
}

cat >"$R/etc/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $R/log/keystone.log
[database]
connection = $DBURL/keystone?charset=utf8
[token]
provider = fernet
[fernet_tokens]
key_repository = $R/etc/keystone/fernet-keys
[fernet_receipts]
key_repository = $R/etc/keystone/fernet-keys
[credential]
key_repository = $R/etc/keystone/credential-keys
EOF

cat >"$R/etc/placement/placement.conf" <<EOF
[DEFAULT]
log_file = $R/log/placement.log
[api]
auth_strategy = keystone
[placement_database]
connection = $DBURL/placement?charset=utf8
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000/v3
$(authtoken placement)
service_token_roles_required = true
EOF

cat >"$R/etc/glance/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9292
workers = 1
log_file = $R/log/glance-api.log
enabled_backends = local:file
[glance_store]
default_backend = local
[local]
filesystem_store_datadir = $R/data/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $R/data/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $R/data/glance/tasks
[database]
connection = $DBURL/glance?charset=utf8
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000/v3
$(authtoken glance)
service_token_roles_required = true
[paste_deploy]
flavor = keystone
config_file = $R/etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $R/lock
EOF

# nova.conf is shared by all nova services; the DB sections go to nova-db.conf,
# which nova-compute does not read (it must not have DB access).
cat >"$R/etc/nova/nova.conf" <<EOF
[DEFAULT]
host = devcloud-compute
my_ip = 127.0.0.1
state_path = $R/data/nova
instances_path = $R/data/nova/instances
log_dir = $R/log
transport_url = rabbit://guest:guest@127.0.0.1:5672/
compute_driver = fake.FakeDriver
enabled_apis = osapi_compute
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = 8774
osapi_compute_workers = 1
allow_resize_to_same_host = True
[api]
auth_strategy = keystone
[conductor]
workers = 1
[scheduler]
workers = 1
[wsgi]
api_paste_config = $R/etc/nova/api-paste.ini
[oslo_concurrency]
lock_path = $R/lock
[oslo_messaging_notifications]
driver = noop
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000/v3
$(authtoken nova)
service_token_roles_required = true
[service_user]
send_service_user_token = true
$(authtoken nova)
[placement]
$(authtoken placement)
[glance]
region_name = RegionOne
[neutron]
$(authtoken neutron)
[vnc]
enabled = false
EOF
cat >"$R/etc/nova/nova-db.conf" <<EOF
[api_database]
connection = $DBURL/nova_api?charset=utf8
[database]
connection = $DBURL/nova?charset=utf8
EOF
NOVA_CTL="--config-file $R/etc/nova/nova.conf --config-file $R/etc/nova/nova-db.conf"

cat >"$R/etc/openstack/clouds.yaml" <<EOF
clouds:
  devcloud:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: admin
      password: $PW
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
EOF
log "configuration written to $R/etc"

# ---------------------------------------------------------------- 4. MariaDB + RabbitMQ
if [ ! -d "$R/mysql/data/mysql" ]; then
    mariadb-install-db --defaults-file="$R/etc/my.cnf" --auth-root-authentication-method=normal \
        --skip-test-db >"$R/log/mysql-install.log" 2>&1 || die "mariadb-install-db failed"
fi
start mysqld mariadbd --defaults-file="$R/etc/my.cnf"
# epmd in the foreground (so we own its pid), then the broker; call
# /usr/lib/rabbitmq/bin/* directly: the /usr/sbin wrappers su to user rabbitmq
# (other HOME, other erlang cookie) and would spawn a second epmd.
rabbit() { ( . "$R/rabbitmq/env.sh"; exec "$@" ); }
start epmd env ERL_EPMD_ADDRESS=127.0.0.1 /usr/bin/epmd -port 4369
sleep 0.3
start rabbitmq bash -c ". $R/rabbitmq/env.sh; exec /usr/lib/rabbitmq/bin/rabbitmq-server"
wait_for 60 "mariadb" mariadb-admin --defaults-file="$R/etc/my.cnf" ping
mariadb --defaults-file="$R/etc/my.cnf" -uroot <<'EOF'
CREATE USER IF NOT EXISTS 'openstack'@'127.0.0.1' IDENTIFIED BY 'openstack';
GRANT ALL PRIVILEGES ON *.* TO 'openstack'@'127.0.0.1';
CREATE DATABASE IF NOT EXISTS keystone;  CREATE DATABASE IF NOT EXISTS placement;
CREATE DATABASE IF NOT EXISTS glance;    CREATE DATABASE IF NOT EXISTS nova_api;
CREATE DATABASE IF NOT EXISTS nova;      CREATE DATABASE IF NOT EXISTS nova_cell0;
EOF

# ---------------------------------------------------------------- 5. schema (in parallel)
QUIET='removeHandlerRef|^Traceback|logging/__init__|threading.py|eventlet/green|getcurrent|monkey patching'
(
  C="--config-file $R/etc/keystone/keystone.conf"
  keystone-manage $C db_sync
  [ -e "$R/etc/keystone/fernet-keys/0" ] || keystone-manage $C fernet_setup --keystone-user root --keystone-group root
  [ -e "$R/etc/keystone/credential-keys/0" ] || keystone-manage $C credential_setup --keystone-user root --keystone-group root
  keystone-manage $C bootstrap --bootstrap-password "$PW" --bootstrap-region-id RegionOne \
      --bootstrap-admin-url http://127.0.0.1:5000/v3/ --bootstrap-internal-url http://127.0.0.1:5000/v3/ \
      --bootstrap-public-url http://127.0.0.1:5000/v3/
) >"$R/log/keystone-manage.log" 2>&1 & P1=$!
( placement-manage --config-file "$R/etc/placement/placement.conf" db sync
  "$R/bin/glance-manage" --config-file "$R/etc/glance/glance-api.conf" db_sync
) >"$R/log/placement-glance-manage.log" 2>&1 & P2=$!
(
  "$R/bin/nova-manage" $NOVA_CTL api_db sync
  "$R/bin/nova-manage" $NOVA_CTL cell_v2 map_cell0 --database_connection "$DBURL/nova_cell0?charset=utf8"
  cells=$("$R/bin/nova-manage" $NOVA_CTL cell_v2 list_cells 2>/dev/null)
  grep -q ' cell1 ' <<<"$cells" || "$R/bin/nova-manage" $NOVA_CTL cell_v2 create_cell --name cell1
  "$R/bin/nova-manage" $NOVA_CTL db sync
) >"$R/log/nova-manage.log" 2>&1 & P3=$!
wait $P1 || { grep -vE "$QUIET" "$R/log/keystone-manage.log" | tail; die "keystone db setup failed"; }
log "keystone schema + bootstrap done"

# ---------------------------------------------------------------- 6. services
UWSGI="uwsgi --plugin python3 --master --lazy-apps --die-on-term --buffer-size 65535 --threads 1
       --add-header Connection:close"
start keystone env OS_KEYSTONE_CONFIG_FILES="$R/etc/keystone/keystone.conf" $UWSGI --processes 2 \
    --http-socket 127.0.0.1:5000 --wsgi-file /usr/bin/keystone-wsgi-public
wait_for 90 "keystone" curl -sf http://127.0.0.1:5000/v3
"$R/bin/os-helper" bootstrap "$PW" >"$R/log/os-helper.log" 2>&1 || { tail "$R/log/os-helper.log"; die "keystone bootstrap failed"; }
log "service users + catalog created"
start neutron-stub "$R/bin/neutron-stub" 9696
wait $P2 || { grep -vE "$QUIET" "$R/log/placement-glance-manage.log" | tail; die "placement/glance db sync failed"; }
start placement env OS_PLACEMENT_CONFIG_DIR="$R/etc/placement" $UWSGI --processes 1 \
    --http-socket 127.0.0.1:8778 --wsgi-file /usr/bin/placement-api
start glance-api "$R/bin/glance-api" --config-file "$R/etc/glance/glance-api.conf"
wait $P3 || { grep -vE "$QUIET" "$R/log/nova-manage.log" | tail; die "nova db setup failed"; }
log "placement/glance/nova schemas done"
wait_for 90 "rabbitmq" rabbit /usr/lib/rabbitmq/bin/rabbitmqctl -q await_startup --timeout 5
start nova-api       "$R/bin/nova-api"       $NOVA_CTL
start nova-conductor "$R/bin/nova-conductor" $NOVA_CTL
start nova-scheduler "$R/bin/nova-scheduler" $NOVA_CTL
start nova-compute   "$R/bin/nova-compute"   --config-file "$R/etc/nova/nova.conf"
# more fake hypervisors (DEVCLOUD_COMPUTES, default 2) so that migrations have somewhere to go
for ((i = 2; i <= COMPUTES; i++)); do
    printf '[DEFAULT]\nhost = devcloud-compute-%s\nlog_file = %s\n' "$i" "$R/log/nova-compute-$i.log" \
        >"$R/etc/nova/nova-compute-$i.conf"
    start "nova-compute-$i" "$R/bin/nova-compute" --config-file "$R/etc/nova/nova.conf" \
        --config-file "$R/etc/nova/nova-compute-$i.conf"
done
wait_for 60 "neutron stub" curl -sf http://127.0.0.1:9696/
wait_for 90 "placement" curl -sf http://127.0.0.1:8778/
wait_for 90 "glance" curl -s -o /dev/null http://127.0.0.1:9292/
wait_for 120 "nova-api" curl -sf http://127.0.0.1:8774/
"$R/bin/os-helper" wait-compute "$PW" 180 "$COMPUTES" || die "nova services did not come up (see $R/log/nova-*.log)"
"$R/bin/nova-manage" $NOVA_CTL cell_v2 discover_hosts >>"$R/log/nova-manage.log" 2>&1
log "nova conductor/scheduler/compute up, compute host mapped"
"$R/bin/os-helper" seed "$PW" >>"$R/log/os-helper.log" 2>&1 || { tail "$R/log/os-helper.log"; die "seeding flavors/image/quotas failed"; }
log "seeded flavors zeroops.small/zeroops.big, image zeroops-tiny, quotas"

cat <<EOF

# ---- OpenStack on 127.0.0.1 is up ($(elapsed)s). Use either:
export OS_CLIENT_CONFIG_FILE=$R/etc/openstack/clouds.yaml OS_CLOUD=devcloud
# or
export OS_AUTH_URL=http://127.0.0.1:5000/v3 OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne
export OS_USERNAME=admin OS_PASSWORD=$PW OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default
# clouds.yaml ($R/etc/openstack/clouds.yaml):
$(cat "$R/etc/openstack/clouds.yaml")
EOF
