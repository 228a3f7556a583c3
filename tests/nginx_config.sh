#!/usr/bin/env bash
# Validate nginx_rock/etc/nginx the way the local run of the `synapse-nginx`
# container sees it, then exercise it against a stand-in for Synapse.
#
# Local view of the container (reproduced here with a mount namespace):
#   /etc/nginx                         <- nginx_rock/etc/nginx of this repo, read-only bind mount
#   /tmp, /run, /var/lib/nginx,
#   /var/log/nginx                     <- fresh, empty tmpfs
#   /usr/sbin/nginx                    <- the host's nginx (Debian package), run as root
# Everything runs in a fresh network namespace, so ports 8008 and 8080 never
# clash with anything else on the machine.
#
# Needs root, util-linux unshare/nsenter/mount, iproute2, nginx, curl and python3.
# Prints "nginx config: N passed, M failed" and exits non-zero on any failure.
set -uo pipefail

SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
CONF_SRC=$REPO/nginx_rock/etc/nginx
STATIC_SRC=$REPO/nginx_rock/srv/synapse-static
TMPFS_DIRS=(/tmp /run /var/lib/nginx /var/log/nginx)

die() { echo "nginx config: $*" >&2; exit 2; }

if [[ ${1:-} != --in-netns ]]; then
    [[ $EUID -eq 0 ]] || die "must run as root (mount and network namespaces)"
    for tool in unshare nsenter mount ip nginx curl python3; do
        command -v "$tool" >/dev/null || die "missing tool: $tool"
    done
    [[ -f $CONF_SRC/nginx.conf ]] || die "no $CONF_SRC/nginx.conf"
    for d in /etc/nginx "${TMPFS_DIRS[@]}"; do
        [[ -d $d ]] || die "mount point $d does not exist on this host (is the nginx package installed?)"
    done
    exec unshare --net -- "$BASH" "$SELF" --in-netns
fi

# ---- From here on: inside the private network namespace. -------------------

ip link set lo up || die "cannot bring up lo in the network namespace"

WORK=$(mktemp -d /tmp/nginx-config-test.XXXXXX)
UPSTREAM_PID=""
NGINX_PID=""
cleanup() {
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null
        wait "$NGINX_PID" 2>/dev/null
    fi
    if [[ -n $UPSTREAM_PID ]] && kill -0 "$UPSTREAM_PID" 2>/dev/null; then
        kill -TERM "$UPSTREAM_PID" 2>/dev/null
        wait "$UPSTREAM_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

PASSED=0
FAILED=0
check() { # check DESCRIPTION COMMAND...
    local desc=$1; shift
    if "$@"; then
        PASSED=$((PASSED + 1)); echo "  ok    $desc"
    else
        FAILED=$((FAILED + 1)); echo "  FAIL  $desc"
    fi
}
finish() {
    echo "nginx config: $PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
    exit
}

# Prefixes that run a command in a mount view of the container. They are plain
# command lines, not functions, so that `"${IN_CONTAINER_VIEW[@]}" nginx ... &`
# leaves $! pointing at the nginx master itself (unshare and bash both exec).
# With a static directory, the view also has the rock's /srv/synapse-static.
# With a site directory, the view also has the files the charm pushes through Pebble
# (/var/lib/nginx/charm, from tests/nginx_site/<setup>).
VIEW_SCRIPT='
    set -e
    conf=$1 static=$2 site=$3; shift 3
    # Sources first: the repository may itself live under /tmp, which is replaced below.
    mount --bind "$conf" /etc/nginx
    mount -o remount,ro,bind /etc/nginx
    if [ -n "$static" ]; then
        mount -t tmpfs -o mode=0755 tmpfs /srv
        mkdir /srv/synapse-static
        mount --bind "$static" /srv/synapse-static
        mount -o remount,ro,bind /srv/synapse-static
    fi
    mount -t tmpfs -o mode=0755 tmpfs /var/lib/nginx
    if [ -n "$site" ]; then
        mkdir /var/lib/nginx/charm
        cp "$site"/*.json "$site"/*.conf /var/lib/nginx/charm/
    fi
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    for d in /run /var/log/nginx; do
        mount -t tmpfs -o mode=0755 tmpfs "$d"
    done
    exec "$@"
'
SITE_SRC=$REPO/tests/nginx_site
IN_BARE_VIEW=(unshare --mount --propagation private -- "$BASH" -c "$VIEW_SCRIPT" view "$CONF_SRC" "" "")
IN_CONTAINER_VIEW=(unshare --mount --propagation private -- "$BASH" -c "$VIEW_SCRIPT" view "$CONF_SRC" "" "$SITE_SRC/same-host")
IN_ROCK_VIEW=(unshare --mount --propagation private -- "$BASH" -c "$VIEW_SCRIPT" view "$CONF_SRC" "$STATIC_SRC" "$SITE_SRC/same-host")

echo "nginx config: $CONF_SRC"

# ---- Static checks ---------------------------------------------------------

"${IN_CONTAINER_VIEW[@]}" nginx -t -c /etc/nginx/nginx.conf >"$WORK/t.out" 2>&1
T_RC=$?
check "nginx -t passes in the container view" test "$T_RC" -eq 0
[[ $T_RC -eq 0 ]] || { sed 's/^/        /' "$WORK/t.out"; finish; }
# Before the charm pushed anything (the bare image) and with each reference site.
"${IN_BARE_VIEW[@]}" nginx -t -c /etc/nginx/nginx.conf >"$WORK/t.out" 2>&1
check "nginx -t passes without the charm's files" test $? -eq 0
for setup in same-host delegated port; do
    unshare --mount --propagation private -- "$BASH" -c "$VIEW_SCRIPT" view "$CONF_SRC" "" "$SITE_SRC/$setup" \
        nginx -t -c /etc/nginx/nginx.conf >"$WORK/t.out" 2>&1
    check "nginx -t passes with the $setup site" test $? -eq 0
done

"${IN_CONTAINER_VIEW[@]}" nginx -T -c /etc/nginx/nginx.conf >"$WORK/dump.conf" 2>/dev/null
check "effective config sets client_max_body_size 50M" \
    grep -Eq '^[[:space:]]*client_max_body_size[[:space:]]+50M;' "$WORK/dump.conf"

# ---- Stand-in for Synapse on localhost:8008 --------------------------------

DOCROOT=$WORK/docroot
mkdir -p "$DOCROOT/_matrix/client" "$DOCROOT/_synapse/client" "$DOCROOT/.well-known/matrix" \
         "$DOCROOT/_synapse/admin/v1"
printf '{"versions":["v1.11","v1.12"],"unstable_features":{}}\n' >"$DOCROOT/_matrix/client/versions"
printf '{"m.server":"matrix.example.test:443"}\n' >"$DOCROOT/.well-known/matrix/server"
printf '{"page":"sso"}\n' >"$DOCROOT/_synapse/client/sso"
printf '{"server_version":"1.163.2"}\n' >"$DOCROOT/_synapse/admin/v1/server_version"
printf '{"nonce":"n"}\n' >"$DOCROOT/_synapse/admin/v1/register"
python3 -c 'import json; print(json.dumps({"rooms": [{"room_id": "!r%d:example.test" % i, "name": "Room %d" % i} for i in range(200)]}))' \
    >"$DOCROOT/_matrix/client/big"

cat >"$WORK/upstream.py" <<'PY'
"""Files from a directory as JSON, plus a few endpoints to observe the proxy."""
import http.server
import json
import socket
import sys

port, docroot, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=docroot, **kwargs)

    def guess_type(self, path):
        return "application/json"

    def log_message(self, fmt, *args):  # record what reached "Synapse"
        with open(log_path, "a") as f:
            f.write("%s %s\n" % (self.command, self.path))

    def reply(self, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/_matrix/test/echo"):
            self.reply({"request_version": self.request_version,
                        "headers": {k.lower(): v for k, v in self.headers.items()}})
        elif self.path.startswith("/_matrix/test/frame-deny"):
            self.reply({}, [("X-Frame-Options", "DENY")])
        else:
            super().do_GET()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        received = 0
        while received < length:
            chunk = self.rfile.read(min(65536, length - received))
            if not chunk:
                break
            received += len(chunk)
        self.reply({"received": received})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


try:  # Like Synapse (bind_addresses: ['::']): IPv6 and IPv4 on one socket.
    Server.address_family = socket.AF_INET6
    server = Server(("::", port), Handler, bind_and_activate=False)
    server.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.server_bind()
    server.server_activate()
except OSError:
    Server.address_family = socket.AF_INET
    server = Server(("127.0.0.1", port), Handler)
server.serve_forever()
PY

python3 "$WORK/upstream.py" 8008 "$DOCROOT" "$WORK/upstream.log" 2>"$WORK/upstream.err" &
UPSTREAM_PID=$!

# ---- nginx, as Pebble would run it (foreground, stdout/stderr captured) ----

"${IN_CONTAINER_VIEW[@]}" /usr/sbin/nginx -c /etc/nginx/nginx.conf >"$WORK/nginx.stdout" 2>"$WORK/nginx.stderr" &
NGINX_PID=$!

up=1
for _ in $(seq 1 100); do
    if curl -s -o /dev/null --max-time 1 http://127.0.0.1:8080/health &&
       curl -s -o /dev/null --max-time 1 http://127.0.0.1:8008/_matrix/client/versions; then
        up=0; break
    fi
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
done
check "nginx and the upstream come up" test "$up" -eq 0
if [[ $up -ne 0 ]]; then
    sed 's/^/        nginx: /' "$WORK/nginx.stderr"
    sed 's/^/        upstream: /' "$WORK/upstream.err"
    finish
fi

# req NAME PATH [CURL ARGS...] -> $WORK/NAME.{code,headers,body}
req() {
    local name=$1 path=$2; shift 2
    curl -sS --path-as-is --max-time 10 -o "$WORK/$name.body" -D "$WORK/$name.headers" \
        -w '%{http_code}' "$@" "http://127.0.0.1:8080$path" >"$WORK/$name.code" 2>>"$WORK/curl.err"
    tr -d '\r' <"$WORK/$name.headers" >"$WORK/$name.h" && mv "$WORK/$name.h" "$WORK/$name.headers"
}
code_is() { [[ $(cat "$WORK/$1.code") == "$2" ]]; }
header_is() { # header_is NAME HEADER VALUE: exactly one such header, with that value
    local lines
    lines=$(grep -i "^$2:" "$WORK/$1.headers")
    [[ $(printf '%s\n' "$lines" | grep -c .) -eq 1 && ${lines#*: } == "$3" ]]
}
json_field_is() { # json_field_is NAME PYTHON-EXPR VALUE (expr over `d`)
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if str(eval(sys.argv[2])) == sys.argv[3] else 1)' \
        "$WORK/$1.body" "$2" "$3" 2>/dev/null
}
upstream_never_saw() { ! grep -q -- "$1" "$WORK/upstream.log"; }

# ---- Behaviour ---------------------------------------------------------------

req health /health
check "/health -> 204" code_is health 204
check "/health: X-Content-Type-Options nosniff" header_is health X-Content-Type-Options nosniff
check "/health: X-Frame-Options SAMEORIGIN" header_is health X-Frame-Options SAMEORIGIN
check "/health: Referrer-Policy" header_is health Referrer-Policy strict-origin-when-cross-origin
check "/health: Strict-Transport-Security" header_is health Strict-Transport-Security \
    "max-age=31536000; includeSubDomains"
check "/health: Server header without version" header_is health Server nginx

req versions /_matrix/client/versions
check "/_matrix/client/versions -> 200" code_is versions 200
check "/_matrix/client/versions: body from Synapse" cmp -s "$WORK/versions.body" "$DOCROOT/_matrix/client/versions"
check "proxied response: X-Content-Type-Options nosniff" header_is versions X-Content-Type-Options nosniff
check "proxied response: Strict-Transport-Security" header_is versions Strict-Transport-Security \
    "max-age=31536000; includeSubDomains"

req echo /_matrix/test/echo -H 'Host: matrix.example.test' -H 'X-Forwarded-For: 203.0.113.7'
check "proxy: HTTP/1.1 to Synapse" json_field_is echo 'd["request_version"]' HTTP/1.1
check "proxy: Host \$host" json_field_is echo 'd["headers"]["host"]' matrix.example.test
check "proxy: X-Forwarded-For appends the client" json_field_is echo 'd["headers"]["x-forwarded-for"]' \
    "203.0.113.7, 127.0.0.1"
check "proxy: X-Real-IP" json_field_is echo 'd["headers"]["x-real-ip"]' 127.0.0.1
check "proxy: X-Forwarded-Proto defaults to \$scheme" json_field_is echo 'd["headers"]["x-forwarded-proto"]' http

req echo_https /_matrix/test/echo -H 'X-Forwarded-Proto: https'
check "proxy: X-Forwarded-Proto from the ingress kept" json_field_is echo_https \
    'd["headers"]["x-forwarded-proto"]' https

req deny /_matrix/test/frame-deny
check "Synapse's X-Frame-Options DENY kept, not duplicated" header_is deny X-Frame-Options DENY

req admin /_synapse/admin/v1/server_version
check "/_synapse/admin/v1/server_version -> 404" code_is admin 404
req admin_dots /_matrix/../_synapse/admin/v1/server_version
check "/_matrix/../_synapse/admin/... -> 404" code_is admin_dots 404
check "admin API never reached Synapse" upstream_never_saw /_synapse/admin/v1/server_version
req register /_synapse/admin/v1/register
check "shared-secret registration -> proxied" code_is register 200
req register_sub /_synapse/admin/v1/register/x
check "/_synapse/admin/v1/register/x -> 404" code_is register_sub 404
check "404 from nginx also has security headers" header_is admin X-Frame-Options SAMEORIGIN

req metrics /_synapse/metrics
check "/_synapse/metrics -> 404" code_is metrics 404

# Only /_matrix/, /_synapse/client/ and /_synapse/admin/v1/register reach Synapse
# (the admin API while the charm's admin-api.conf keeps it closed), however the
# path is spelled.
for p in /_synapse/admin/v2/users /_synapse/admin/v1/registerx /_synapse/admin \
         /_synapse/replication/get_repl_stream_updates /_synapse/metrics/ \
         /_synapse/%61dmin/v1/server_version '/_matrix/%2e%2e/_synapse/admin/v1/server_version' \
         //_synapse/admin/v1/server_version /_synapse/client/../admin/v1/server_version \
         /_synapse/metrics/../admin/v1/server_version /.well-known/other; do
    req closed "$p"
    check "$p -> 404" code_is closed 404
done
check "no other admin API reached Synapse" upstream_never_saw /_synapse/admin/v2
check "registerx never reached Synapse" upstream_never_saw /_synapse/admin/v1/registerx
check "metrics never reached Synapse" upstream_never_saw /_synapse/metrics
check "replication never reached Synapse" upstream_never_saw /_synapse/replication
check "/.well-known/other never reached Synapse" upstream_never_saw /.well-known/other
req wk_bare /.well-known/matrix
check "/.well-known/matrix -> 404, not proxied" code_is wk_bare 404
check "/.well-known/matrix never reached Synapse" upstream_never_saw '/.well-known/matrix$'
req register_post /_synapse/admin/v1/register -X POST -H 'Content-Type: application/json' --data '{}'
check "POST shared-secret registration -> proxied" code_is register_post 200

# server_tokens off: no version anywhere nginx speaks for itself.
check "404 from nginx: Server header without version" header_is metrics Server nginx
check "404 from nginx: no version in the error page" \
    bash -c '! grep -Eiq "nginx/[0-9]" "$1"' _ "$WORK/metrics.body"
check "proxied response: Server header without version" header_is versions Server nginx
check "404 from nginx: Referrer-Policy" header_is metrics Referrer-Policy strict-origin-when-cross-origin
check "proxied response: X-Frame-Options SAMEORIGIN" header_is versions X-Frame-Options SAMEORIGIN
check "proxied response: Referrer-Policy" header_is versions Referrer-Policy strict-origin-when-cross-origin

req sso /_synapse/client/sso
check "/_synapse/client/sso -> 200 proxied" code_is sso 200

# The well-known answers come from the charm's files, never from Synapse.
for which in server client; do
    req "wk_$which" "/.well-known/matrix/$which"
    check "/.well-known/matrix/$which -> 200" code_is "wk_$which" 200
    check "/.well-known/matrix/$which: the charm's file" \
        cmp -s "$WORK/wk_$which.body" "$SITE_SRC/same-host/well-known-$which.json"
    check "/.well-known/matrix/$which: application/json" header_is "wk_$which" Content-Type application/json
    check "/.well-known/matrix/$which: CORS origin *" header_is "wk_$which" Access-Control-Allow-Origin '*'
    check "/.well-known/matrix/$which: CORS methods" header_is "wk_$which" Access-Control-Allow-Methods \
        "GET, POST, PUT, DELETE, OPTIONS"
    check "/.well-known/matrix/$which: CORS headers" header_is "wk_$which" Access-Control-Allow-Headers \
        "X-Requested-With, Content-Type, Authorization"
    check "/.well-known/matrix/$which: cached for an hour" header_is "wk_$which" Cache-Control \
        "public, max-age=3600"
    check "/.well-known/matrix/$which: security headers" header_is "wk_$which" X-Content-Type-Options nosniff
    check "/.well-known/matrix/$which: HSTS" header_is "wk_$which" Strict-Transport-Security \
        "max-age=31536000; includeSubDomains"
done
check "/.well-known/matrix/ never reached Synapse" upstream_never_saw /.well-known/matrix/
req wk_preflight /.well-known/matrix/client -X OPTIONS -H 'Origin: https://app.example.test' \
    -H 'Access-Control-Request-Method: GET'
check "well-known CORS preflight -> 204" code_is wk_preflight 204
check "well-known CORS preflight: origin *" header_is wk_preflight Access-Control-Allow-Origin '*'
req wk_head /.well-known/matrix/server -I
check "HEAD /.well-known/matrix/server -> 200" code_is wk_head 200
req wk_support /.well-known/matrix/support
check "/.well-known/matrix/support -> 404" code_is wk_support 404

# The charm pushes new files into the running container (here: into NGINX's mount
# namespace). A new well-known file is served at once; a new admin-api.conf after
# a SIGHUP (Pebble's signals API), without a restart.
push_site_file() { # push_site_file SETUP FILE
    nsenter -t "$NGINX_PID" -m -- sh -c "cat > /var/lib/nginx/charm/$2" <"$SITE_SRC/$1/$2"
}
push_site_file port well-known-server.json
req wk_port /.well-known/matrix/server
check "new well-known file served without a reload" \
    cmp -s "$WORK/wk_port.body" "$SITE_SRC/port/well-known-server.json"
push_site_file delegated admin-api.conf
req admin_before_hup /_synapse/admin/v1/server_version
check "admin-api.conf not live before the reload" code_is admin_before_hup 404
# After a SIGHUP, NGINX's old workers keep answering (with the old configuration)
# until they have handed over: wait until none of the workers from before is left,
# so the next request is answered by the new configuration.
hup_and_wait() {
    local before
    before=$(pgrep -P "$NGINX_PID" | sort)
    kill -HUP "$NGINX_PID"
    for _ in $(seq 1 200); do
        local now
        now=$(pgrep -P "$NGINX_PID" | sort)
        if [ -n "$now" ] && [ -z "$(comm -12 <(echo "$before") <(echo "$now"))" ]; then
            return 0
        fi
        sleep 0.05
    done
}
hup_and_wait
opened=1
for _ in $(seq 1 100); do
    req admin_open /_synapse/admin/v1/server_version
    if code_is admin_open 200; then opened=0; break; fi
    sleep 0.1
done
check "after SIGHUP: admin API proxied for an allowed address (127.0.0.1/32)" test "$opened" -eq 0
check "after SIGHUP: nginx master kept running (reload, not restart)" kill -0 "$NGINX_PID"
check "admin API answer from Synapse" cmp -s "$WORK/admin_open.body" "$DOCROOT/_synapse/admin/v1/server_version"
curl -sS -g --max-time 10 -o /dev/null -w '%{http_code}' 'http://[::1]:8080/_synapse/admin/v1/server_version' \
    >"$WORK/admin_v6.code" 2>>"$WORK/curl.err"
check "admin API proxied for ::1 (::1/128)" code_is admin_v6 200
ip addr add 192.0.2.10/32 dev lo
curl -sS --max-time 10 --interface 192.0.2.10 -o "$WORK/admin_denied.body" -D "$WORK/admin_denied.headers" \
    -w '%{http_code}' http://192.0.2.10:8080/_synapse/admin/v1/users >"$WORK/admin_denied.code" 2>>"$WORK/curl.err"
tr -d '\r' <"$WORK/admin_denied.headers" >"$WORK/admin_denied.h" && mv "$WORK/admin_denied.h" "$WORK/admin_denied.headers"
check "admin API refused (403) for an address outside the allowed networks" code_is admin_denied 403
check "403 from nginx has security headers" header_is admin_denied X-Frame-Options SAMEORIGIN
check "the refused admin request never reached Synapse" upstream_never_saw /_synapse/admin/v1/users
req metrics_open /_synapse/metrics
check "metrics still 404 with the admin API open" code_is metrics_open 404
push_site_file same-host admin-api.conf
hup_and_wait
closed=1
for _ in $(seq 1 100); do
    req admin_closed /_synapse/admin/v1/server_version
    if code_is admin_closed 404; then closed=0; break; fi
    sleep 0.1
done
check "closed again after the next reload" test "$closed" -eq 0

req root /
check "/ -> 404 or 200 (static site, absent locally)" \
    bash -c '[[ $(cat "$1") == 404 || $(cat "$1") == 200 ]]' _ "$WORK/root.code"

head -c $((2 * 1024 * 1024)) /dev/zero >"$WORK/upload.bin"
req upload '/_matrix/media/v3/upload?filename=a.bin' --data-binary @"$WORK/upload.bin" \
    -H 'Content-Type: application/octet-stream'
check "2 MiB upload (above nginx's 1M default) -> 200" code_is upload 200
check "2 MiB upload reached Synapse whole" json_field_is upload 'd["received"]' 2097152

req too_big /_matrix/media/v3/upload -H 'Content-Length: 62914560' --data-binary 'x'
check "60 MB declared body -> 413" code_is too_big 413

# A body really sent, one byte above Synapse's max_upload_size (50M): nginx answers
# 413 itself (with its headers, without its version) and Synapse never sees it.
head -c $((50 * 1024 * 1024 + 1)) /dev/zero >"$WORK/over.bin"
req over '/_matrix/media/v3/upload?filename=over.bin' --data-binary @"$WORK/over.bin" \
    -H 'Content-Type: application/octet-stream'
rm -f "$WORK/over.bin"
check "50M + 1 byte upload -> 413" code_is over 413
check "413: no version in the error page" bash -c '! grep -Eiq "nginx/[0-9]" "$1"' _ "$WORK/over.body"
check "413: Server header without version" header_is over Server nginx
check "413: X-Content-Type-Options nosniff" header_is over X-Content-Type-Options nosniff
check "413: X-Frame-Options SAMEORIGIN" header_is over X-Frame-Options SAMEORIGIN
check "the oversized upload never reached Synapse" upstream_never_saw 'filename=over.bin'

req gzip /_matrix/client/big -H 'Accept-Encoding: gzip'
check "JSON responses gzip-compressed" header_is gzip Content-Encoding gzip

req token '/_matrix/client/versions?access_token=syt_secret_token_value'
check "query string with access_token proxied -> 200" code_is token 200

# Let the workers flush their log lines, then stop nginx like Pebble does.
sleep 0.2
kill -TERM "$NGINX_PID" 2>/dev/null
wait "$NGINX_PID" 2>/dev/null
STOP_RC=$?
NGINX_PID=""
check "nginx exits cleanly on SIGTERM" test "$STOP_RC" -eq 0

check "access log on stdout" grep -q '"GET /_matrix/client/versions HTTP/1.1" 200' "$WORK/nginx.stdout"
check "/health not in the access log" bash -c '! grep -q "/health" "$1"' _ "$WORK/nginx.stdout"
check "access tokens not in the access log" bash -c '! grep -q "syt_secret" "$1"' _ "$WORK/nginx.stdout"
check "no emerg/alert/crit on stderr" bash -c '! grep -Eq "\[(emerg|alert|crit)\]" "$1"' _ "$WORK/nginx.stderr"

# ---- The rock's static site (this view adds /srv/synapse-static) ----------

if [[ -d /srv && -f $STATIC_SRC/index.html ]]; then
    "${IN_ROCK_VIEW[@]}" /usr/sbin/nginx -c /etc/nginx/nginx.conf >"$WORK/nginx2.stdout" 2>"$WORK/nginx2.stderr" &
    NGINX_PID=$!
    up=1
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null --max-time 1 http://127.0.0.1:8080/health; then up=0; break; fi
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    check "nginx comes up with the rock's static site" test "$up" -eq 0
    req static_root /
    check "static: / -> 200" code_is static_root 200
    check "static: / is index.html" cmp -s "$WORK/static_root.body" "$STATIC_SRC/index.html"
    check "static: text/html from mime.types" header_is static_root Content-Type text/html
    check "static: security headers" header_is static_root X-Content-Type-Options nosniff
    req static_missing /no-such-page
    check "static: missing file -> 404" code_is static_missing 404
    kill -TERM "$NGINX_PID" 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
    NGINX_PID=""
else
    echo "  skip  static site (no /srv on this host to mount it over)"
fi

if [[ $FAILED -ne 0 ]]; then
    echo "--- nginx stderr"; cat "$WORK/nginx.stderr"
    echo "--- nginx stdout"; cat "$WORK/nginx.stdout"
    echo "--- upstream log"; cat "$WORK/upstream.log" 2>/dev/null
    echo "--- curl errors"; cat "$WORK/curl.err" 2>/dev/null
fi
finish
