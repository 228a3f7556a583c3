"""Small helpers the scenarios share: each is one or two plain `juju` commands.

Everything here goes through the `juju` CLI (Jubilant), so it runs against a real
controller as well. Where JujuLocal and Juju differ, the helper hides it and a comment
says how: on JujuLocal the test host cannot reach a pod's own network, so HTTP calls and
the Matrix client run inside the unit's pod (`juju exec`, whose charm container is the
host's file system); on Juju they run on the test host against the unit's address.
"""

import json
import os
import shlex
import subprocess
import sys

import jubilant

from conftest import CHARM, REAL, REPO, RESOURCES, TOOLS

MATRIX_CLIENT = REPO / 'tests' / 'e2e' / 'matrix_client.py'


def deploy_synapse(juju: jubilant.Juju, app: str = 'synapse', **kwargs) -> None:
    """`juju deploy ./synapse.charm APP --resource ...` (kwargs: config, num_units, ...)."""
    juju.deploy(CHARM, app, resources=RESOURCES, **kwargs)


def address(juju: jubilant.Juju, unit: str) -> str:
    """The unit's address, as `juju status` shows it."""
    return juju.status().get_units(unit.split('/')[0])[unit].address


def base_url(juju: jubilant.Juju, unit: str, port: int = 8080) -> str:
    """Where the unit's NGINX (or PORT) answers for `http_status`, `http_get`, `matrix`."""
    return f'http://{address(juju, unit)}:{port}' if REAL else f'http://localhost:{port}'


def _run(juju: jubilant.Juju, unit: str, argv: list[str]) -> str:
    """Runs argv next to the unit: in its pod on JujuLocal, on the test host on Juju."""
    if REAL:
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return juju.exec(shlex.join(argv), unit=unit).stdout


def in_pod(juju: jubilant.Juju, unit: str, *command: str) -> str:
    """Runs a command in the unit's charm container (the pod's network): `juju exec`.

    The arguments are quoted here: `juju exec` joins them into one shell line.
    """
    return juju.exec(shlex.join(command), unit=unit).stdout


def _curl(url: str, headers: tuple[str, ...], *opts: str) -> list[str]:
    args = ['curl', '-s', '--max-time', '5', *opts]
    for h in headers:
        args += ['-H', h]
    return [*args, url]


def http_status(juju: jubilant.Juju, unit: str, url: str, *headers: str) -> int:
    """The HTTP status of a GET of URL (from `base_url`); 0 when nothing answers."""
    argv = _curl(url, headers, '-o', '/dev/null', '-w', '%{http_code}')
    if REAL:
        out = subprocess.run(argv, capture_output=True, text=True).stdout
    else:
        out = juju.exec(shlex.join(argv) + ' || true', unit=unit).stdout
    return int(out.strip() or 0)


def http_get(juju: jubilant.Juju, unit: str, url: str, *headers: str) -> str:
    """The body of a GET of URL (from `base_url`)."""
    return _run(juju, unit, _curl(url, headers))


def http_post(juju: jubilant.Juju, unit: str, url: str, *headers: str) -> str:
    """The body of an empty POST to URL (from `base_url`)."""
    return _run(juju, unit, _curl(url, headers, '-X', 'POST'))


def matrix(juju: jubilant.Juju, unit: str, *args: str) -> dict:
    """The Matrix client (matrix-nio, tests/e2e/matrix_client.py), next to the unit.

    The interpreter is this one (the integration venv, which has matrix-nio): on
    JujuLocal the pod's charm container sees the host's files, so it runs there.
    """
    return json.loads(_run(juju, unit, [sys.executable, str(MATRIX_CLIENT), *args]))


def unit_status(juju: jubilant.Juju, unit: str) -> tuple[str, str]:
    """The unit's workload status and message, as `juju status` shows them."""
    app = unit.split('/')[0]
    ws = juju.status().apps[app].units[unit].workload_status
    return ws.current, ws.message


def starts(juju: jubilant.Juju, unit: str, container: str, service: str) -> int:
    """How often Pebble has started SERVICE: its `Start service "SERVICE"` tasks, over all
    of the container's changes (a restart or a replan is a stop task and a start task).

    Pebble's own log (`Service "synapse" starting`) is not reachable through `juju`
    (on Kubernetes it is the container's log, `kubectl logs`); its changes are, and they
    count the starts the charm asked for (not Pebble's own restarts of a crashed service).
    A new container (pod churn) starts counting from zero.
    """
    out = juju.ssh(
        unit,
        'for id in $(/charm/bin/pebble changes | awk \'NR > 1 {print $1}\'); '
        'do /charm/bin/pebble tasks "$id"; done',
        container=container,
    )
    return sum(1 for line in out.splitlines() if line.endswith(f'Start service "{service}"'))


def restart_pod(juju: jubilant.Juju, unit: str) -> None:
    """Pod churn: every workload container comes back with a fresh Pebble (no layers, no
    services); Juju then fires pebble-ready for each.

    Juju: `kubectl delete pod` (Kubernetes recreates it, the charm container too).
    JujuLocal: `jujulocal restart-container` for each workload container (its charm
    container is the host's file system and stays).
    """
    app, n = unit.split('/')
    if REAL:
        subprocess.run(
            ['kubectl', '-n', juju.model, 'delete', 'pod', f'{app}-{n}'], check=True
        )
        return
    jujulocal = os.environ['JUJULOCAL_BIN']
    model_dir = os.path.join(os.environ['JUJULOCAL_HOME'], 'models', juju.model or '')
    for container in ('synapse', 'synapse-nginx'):
        subprocess.run(
            [jujulocal, '--model-dir', model_dir, 'restart-container', unit, container],
            check=True,
            capture_output=True,
        )


def wait_serving(juju: jubilant.Juju, unit: str) -> jubilant.Status:
    """Waits until every unit is active and Synapse answers through NGINX."""
    return juju.wait(
        lambda status: jubilant.all_active(status, unit.split('/')[0])
        and http_status(juju, unit, f'{base_url(juju, unit)}/_matrix/client/versions') == 200,
        error=jubilant.any_error,
        delay=1,
    )


def secret_content(juju: jubilant.Juju, label: str) -> dict[str, str]:
    """The latest content of the charm's secret with this label (`juju secrets`,
    `juju show-secret --reveal`; on Juju, as the model's admin)."""
    for secret in juju.secrets():
        if secret.label == label:
            return juju.show_secret(secret.uri, reveal=True).content
    raise AssertionError(f'no secret labelled {label!r}')


# --- scenarios ---


def hook_runs(juju: jubilant.Juju, unit: str, hook: str) -> int:
    """How often the unit agent has run HOOK on UNIT, from `juju debug-log` (its
    `juju.worker.uniter.operation ran "HOOK" hook` lines; JujuLocal writes them too).

    `--replay --no-tail`: the whole log, then exit (`--limit 0` would tail on Juju).
    """
    tag = 'unit-' + unit.replace('/', '-')
    ran = f'ran "{hook}" hook'
    log = juju.cli('debug-log', '--replay', '--no-tail', '--include', unit)
    return sum(1 for line in log.splitlines() if line.startswith(tag) and ran in line)


def wait_for_hook(juju: jubilant.Juju, unit: str, hook: str, before: int) -> None:
    """Waits until HOOK has run on UNIT more than BEFORE times (`hook_runs`)."""
    juju.wait(lambda _: hook_runs(juju, unit, hook) > before, delay=1, successes=1)


def wait_update_status(juju: jubilant.Juju, unit: str) -> None:
    """Waits for the next update-status on UNIT to have run: Juju fires it on its timer
    (the `juju` fixture sets 10 s), JujuLocal from `juju status` once
    JUJULOCAL_UPDATE_STATUS_INTERVAL (5 s here) has passed."""
    wait_for_hook(juju, unit, 'update-status', hook_runs(juju, unit, 'update-status'))


def wait_until(juju: jubilant.Juju, condition, timeout: float | None = None) -> jubilant.Status:
    """Waits until CONDITION() holds, polling once a second (`juju.wait`, whose status
    calls also let JujuLocal fire its update-status)."""
    return juju.wait(lambda _: condition(), delay=1, successes=1, timeout=timeout)


def wait_status(
    juju: jubilant.Juju, unit: str, current: str, message_start: str = '', **kwargs
) -> str:
    """Waits until UNIT's workload status is CURRENT with a message starting with
    MESSAGE_START; returns the message. kwargs go to `juju.wait` (error, timeout)."""

    def ready(status: jubilant.Status) -> bool:
        ws = status.apps[unit.split('/')[0]].units[unit].workload_status
        return ws.current == current and ws.message.startswith(message_start)

    status = juju.wait(ready, delay=1, successes=1, **kwargs)
    return status.apps[unit.split('/')[0]].units[unit].workload_status.message


def services(juju: jubilant.Juju, unit: str, container: str) -> dict[str, str]:
    """Pebble's services in the container and their state (`pebble services`)."""
    out = juju.ssh(unit, '/charm/bin/pebble services', container=container)
    return {line.split()[0]: line.split()[2] for line in out.splitlines()[1:] if line.strip()}


def shared_secret(juju: jubilant.Juju, app: str) -> str:
    """The registration shared secret APP keeps in its application secret."""
    for secret in juju.secrets():
        if secret.label == 'synapse-keys' and secret.owner == app:
            return juju.show_secret(secret.uri, reveal=True).content['registration-shared-secret']
    raise AssertionError(f'no synapse-keys secret owned by {app}')


def metric(juju: jubilant.Juju, unit: str, name: str) -> float | None:
    """A value of the stats exporter's metrics, scraped on the unit's port 9877."""
    text = http_get(juju, unit, base_url(juju, unit, 9877) + '/metrics')
    for line in text.splitlines():
        if line.startswith(f'{name} '):
            return float(line.split()[1])
    return None


def _jujulocal(juju: jubilant.Juju, *args: str) -> str:
    """JujuLocal's own CLI on the model, for what the `juju` CLI cannot do there."""
    model_dir = os.path.join(os.environ['JUJULOCAL_HOME'], 'models', juju.model or '')
    return subprocess.run(
        [os.environ['JUJULOCAL_BIN'], '--model-dir', model_dir, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _standin_cluster(juju: jubilant.Juju, app: str) -> dict:
    path = os.path.join(
        os.environ['JUJULOCAL_HOME'], 'models', juju.model or '', 'providers', f'{app}.json'
    )
    with open(path) as f:
        return json.load(f)['data']


def _as_postgres(cluster: dict, program: str, *args: str) -> list[str]:
    argv = [os.path.join(cluster['bin'], program), *args]
    return ['runuser', '-u', 'postgres', '--', *argv] if os.geteuid() == 0 else argv


def psql(juju: jubilant.Juju, app: str, sql: str, database: str = 'postgres') -> str:
    """Runs SQL as PostgreSQL's superuser on APP (postgresql-k8s); stdout, trimmed.

    JujuLocal: the stand-in's server, over its Unix socket. Juju: `psql` in the
    postgresql container as the charm's `operator` user (`get-password` action).
    """
    if REAL:
        password = juju.run(f'{app}/leader', 'get-password').results['password']
        command = shlex.join(
            ['psql', '-h', '127.0.0.1', '-U', 'operator', '-d', database, '-XAtc', sql]
        )
        return juju.ssh(
            f'{app}/0', f'PGPASSWORD={shlex.quote(password)} {command}', container='postgresql'
        ).strip()
    cl = _standin_cluster(juju, app)
    argv = _as_postgres(
        cl, 'psql', '-X', '-A', '-t', '-h', cl['dir'], '-p', str(cl['port']), '-U', 'postgres',
        '-d', database, '-v', 'ON_ERROR_STOP=1', '-c', sql,
    )
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def stop_database(juju: jubilant.Juju, app: str) -> None:
    """A PostgreSQL outage (JujuLocal only): the stand-in's server stops (`pg_ctl stop`)."""
    cl = _standin_cluster(juju, app)
    data = os.path.join(cl['dir'], 'data')
    subprocess.run(
        _as_postgres(cl, 'pg_ctl', '-D', data, '-m', 'fast', '-w', 'stop'),
        check=True,
        capture_output=True,
    )


def start_database(juju: jubilant.Juju, app: str) -> None:
    """The end of the outage (JujuLocal only): the server starts again, same port."""
    cl = _standin_cluster(juju, app)
    data = os.path.join(cl['dir'], 'data')
    log = os.path.join(cl['dir'], 'postgres.log')
    subprocess.run(
        _as_postgres(cl, 'pg_ctl', '-D', data, '-l', log, '-w', '-o', f'-p {cl["port"]}', 'start'),
        check=True,
        capture_output=True,
        cwd=cl['dir'],
    )


def database_credentials(juju: jubilant.Juju, app: str) -> tuple[str, dict[str, str]]:
    """The URI and content of the credentials secret APP (postgresql-k8s) shares."""
    owned = [s for s in juju.secrets() if s.owner == app]
    assert len(owned) == 1, f'one secret owned by {app}: {owned}'
    return str(owned[0].uri), juju.show_secret(owned[0].uri, reveal=True).content


def rotate_database_password(juju: jubilant.Juju, app: str, password: str, *, apply=True) -> None:
    """The relation user's password changes (JujuLocal only): in the stand-in's server
    (unless APPLY is false: the secret then holds a password PostgreSQL refuses) and
    in a new revision of its credentials secret, which fires secret-changed."""
    uri, content = database_credentials(juju, app)
    user = content['username']
    if apply:
        psql(juju, app, f"ALTER ROLE {user} PASSWORD '{password}'")
    _jujulocal(juju, 'secret-set', uri, f'username={user}', f'password={password}')


# --- ingress ---


def public_baseurl(juju: jubilant.Juju, unit: str) -> str:
    """The `public_baseurl` Synapse runs with (the ingress URL when the operator set
    none), without its trailing slash: read from /data/homeserver.yaml."""
    import yaml

    text = juju.ssh(unit, 'cat /data/homeserver.yaml', container='synapse')
    return yaml.safe_load(text)['public_baseurl'].rstrip('/')


def _resolve_locally(url: str) -> list[str]:
    """curl options that reach URL's host on 127.0.0.1 (JujuLocal): the stand-in
    proxies listen there and their host names (`<model>-synapse.ingress.test`) are in
    no DNS. On Juju the names are real (or the test's DNS knows them): nothing."""
    if REAL:
        return []
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    return ['--resolve', f'{parts.hostname}:{port}:127.0.0.1']


def via_ingress(url: str) -> tuple[int, str]:
    """GET URL from the test host, through the ingress: (HTTP status, body)."""
    out = subprocess.run(
        ['curl', '-s', '--max-time', '10', *_resolve_locally(url), '-w', '\n%{http_code}', url],
        capture_output=True,
        text=True,
    ).stdout
    body, _, code = out.rpartition('\n')
    return int(code or 0), body


def ingress_controller_address(juju: jubilant.Juju, app: str) -> str:
    """Where nginx-ingress-integrator's ingress controller answers, as its unit status
    says (`Ingress IP(s): <address>`; the stand-in adds its port)."""
    message = juju.status().apps[app].units[f'{app}/0'].workload_status.message
    address = message.split('Ingress IP(s):', 1)[1].split(',')[0].strip()
    return address if ':' in address else f'{address}:80'


# --- observability ---
#
# Prometheus, Loki and Grafana are asked through their own HTTP APIs from the test
# host. On Juju they answer on their unit's address (9090, 3100; Grafana's URL comes
# from its `get-admin-password` action). On JujuLocal the stand-ins listen on the host's
# 127.0.0.1 on a free port, which their status message gives (`Prometheus at URL`,
# `Loki at URL`); the Grafana stand-in runs no Grafana and records the dashboards it
# decoded in a file.


def _status_url(juju: jubilant.Juju, app: str) -> str:
    """The `http://...` URL in the stand-in's unit status message (JujuLocal)."""
    import re

    message = juju.status().apps[app].units[f'{app}/0'].workload_status.message
    found = re.search(r'http://[0-9A-Za-z.:-]+', message)
    assert found, f'no URL in the status of {app}: {message!r}'
    return found.group(0)


def _get_json(url: str, auth: tuple[str, str] | None = None):
    import base64
    import urllib.request

    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f'{auth[0]}:{auth[1]}'.encode()).decode()
        request.add_header('Authorization', f'Basic {token}')
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def prometheus_url(juju: jubilant.Juju, app: str = 'prometheus-k8s') -> str:
    """Where Prometheus answers: its unit's port 9090 (Juju), the stand-in's URL."""
    return f'http://{address(juju, f"{app}/0")}:9090' if REAL else _status_url(juju, app)


def prometheus_api(juju: jubilant.Juju, path: str, app: str = 'prometheus-k8s'):
    """`GET /api/v1/PATH` of Prometheus: its `data`."""
    answer = _get_json(f'{prometheus_url(juju, app)}/api/v1/{path}')
    assert answer['status'] == 'success', answer
    return answer['data']


def scrape_targets(juju: jubilant.Juju, app: str = 'prometheus-k8s') -> list[dict]:
    """Prometheus' active targets (labels, health, scrapeUrl)."""
    return prometheus_api(juju, 'targets', app)['activeTargets']


def prometheus_query(juju: jubilant.Juju, expr: str, app: str = 'prometheus-k8s') -> list[dict]:
    """An instant query's result vector."""
    from urllib.parse import quote

    return prometheus_api(juju, f'query?query={quote(expr)}', app)['result']


def rule_groups(juju: jubilant.Juju, app: str = 'prometheus-k8s') -> list[dict]:
    """The rule groups Prometheus has loaded (`/api/v1/rules`)."""
    return prometheus_api(juju, 'rules', app)['groups']


def loki_url(juju: jubilant.Juju, app: str = 'loki-k8s') -> str:
    """Where Loki answers: its unit's port 3100 (Juju), the stand-in's URL."""
    return f'http://{address(juju, f"{app}/0")}:3100' if REAL else _status_url(juju, app)


def loki_lines(juju: jubilant.Juju, app: str = 'loki-k8s', **labels: str) -> list[tuple[dict, str]]:
    """The log lines Loki holds for the streams with these labels, with each stream's
    labels (`/loki/api/v1/query_range`, an equality selector)."""
    from urllib.parse import quote

    selector = '{' + ', '.join(f'{k}="{v}"' for k, v in labels.items()) + '}'
    url = f'{loki_url(juju, app)}/loki/api/v1/query_range?limit=5000&query={quote(selector)}'
    answer = _get_json(url)
    return [
        (stream['stream'], value[1])
        for stream in answer['data']['result']
        for value in stream['values']
    ]


def log_targets(juju: jubilant.Juju, unit: str, container: str) -> dict:
    """The log targets in the container's Pebble plan (`pebble plan`)."""
    import yaml

    plan = yaml.safe_load(juju.ssh(unit, '/charm/bin/pebble plan', container=container))
    return (plan or {}).get('log-targets', {})


def dashboard_titles(juju: jubilant.Juju, app: str = 'grafana-k8s') -> list[str]:
    """The titles of the dashboards Grafana holds, sorted.

    Juju: Grafana's search API, as admin (`get-admin-password`). JujuLocal: the
    dashboards the stand-in decoded (`dashboards.json` in its directory).
    """
    if REAL:
        results = juju.run(f'{app}/leader', 'get-admin-password').results
        found = _get_json(
            f'{results["url"].rstrip("/")}/api/search?type=dash-db',
            auth=('admin', results['admin-password']),
        )
        return sorted(d['title'] for d in found)
    path = os.path.join(_standin_cluster(juju, app)['dir'], 'dashboards.json')
    with open(path) as f:
        recorded = json.load(f)
    return sorted(d['title'] for per_relation in recorded.values() for d in per_relation.values())


def relation_data(juju: jubilant.Juju, unit: str, endpoint: str) -> tuple[dict, dict]:
    """What the other side of UNIT's ENDPOINT relation wrote: its application databag
    and its units' databags (`juju show-unit`)."""
    info = juju.cli('show-unit', unit, '--endpoint', endpoint, '--format', 'json')
    rel = [r for r in json.loads(info)[unit]['relation-info'] if r['endpoint'] == endpoint]
    assert rel, f'{unit} has no {endpoint} relation'
    units = {u: v.get('data', {}) for u, v in rel[0].get('related-units', {}).items()}
    return rel[0].get('application-data', {}), units


# --- s3 ---
#
# The `s3` provider is s3-integrator. On JujuLocal `juju deploy s3-integrator` is its
# stand-in, backed by a real S3 server (moto) on the host's 127.0.0.1: the pods that
# use it need the host network (the `host_network` fixture). On a real controller the
# bucket lives wherever S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY point.
#
# The bucket is read with boto3 from a Python that has it (SYNAPSE_CHARM_S3_PYTHON,
# else the s3 venv scripts/setup.sh makes); the connection details come from the
# relation, as Synapse's unit sees them (`juju show-unit`).

S3_PYTHON = os.environ.get(
    'SYNAPSE_CHARM_S3_PYTHON', str(TOOLS / 's3-venv' / 'bin' / 'python')
)
S3_ACCESS_KEY = os.environ.get('S3_ACCESS_KEY', 'AKIDJUJULOCALTEST')
S3_SECRET_KEY = os.environ.get('S3_SECRET_KEY', 'jujulocal-test-secret-key')


def deploy_s3(juju: jubilant.Juju, app: str = 's3-integrator', **config: str) -> None:
    """`juju deploy s3-integrator APP` with credentials (as its `access-key` and
    `secret-key` options) and CONFIG (`bucket`, `path`, `s3-uri-style`, ...).

    Juju: the endpoint is S3_ENDPOINT (required). JujuLocal: the stand-in's moto.
    """
    juju.deploy('s3-integrator', app, channel='latest/stable')
    options = {'access-key': S3_ACCESS_KEY, 'secret-key': S3_SECRET_KEY, **config}
    if REAL:
        options.setdefault('endpoint', os.environ['S3_ENDPOINT'])
        options.setdefault('region', os.environ.get('S3_REGION', 'us-east-1'))
    juju.config(app, {k.replace('_', '-'): v for k, v in options.items()})


def s3_connection(juju: jubilant.Juju, unit: str, endpoint: str) -> dict[str, str]:
    """The s3 provider's application databag on UNIT's ENDPOINT relation (endpoint,
    bucket, path, access-key, secret-key, ...), as `juju show-unit` shows it."""
    info = juju.cli('show-unit', unit, '--format', 'json')
    for rel in json.loads(info)[unit]['relation-info']:
        if rel['endpoint'] == endpoint:
            return dict(rel.get('application-data') or {})
    raise AssertionError(f'{unit} has no {endpoint} relation')


_S3_SCRIPT = r"""
import json, sys
import boto3
from botocore.config import Config
conn, op, args = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
client = boto3.client(
    's3',
    endpoint_url=conn.get('endpoint') or None,
    region_name=conn.get('region') or 'us-east-1',
    aws_access_key_id=conn['access-key'],
    aws_secret_access_key=conn['secret-key'],
    config=Config(s3={'addressing_style': 'path' if conn.get('s3-uri-style') == 'path' else 'auto'}),
)
bucket = conn['bucket']
if op == 'list':
    keys = []
    for page in client.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=args[0]):
        keys += [o['Key'] for o in page.get('Contents', [])]
    print(json.dumps(keys))
elif op == 'get':
    sys.stdout.buffer.write(client.get_object(Bucket=bucket, Key=args[0])['Body'].read())
elif op == 'delete':
    client.delete_object(Bucket=bucket, Key=args[0])
elif op == 'put':
    client.put_object(Bucket=bucket, Key=args[0], Body=sys.stdin.buffer.read())
"""


def _s3(conn: dict[str, str], op: str, *args: str, data: bytes = b'') -> bytes:
    return subprocess.run(
        [S3_PYTHON, '-c', _S3_SCRIPT, json.dumps(conn), op, *args],
        check=True,
        capture_output=True,
        input=data,
    ).stdout


def s3_list(conn: dict[str, str], prefix: str = '') -> list[str]:
    """The keys in the relation's bucket under PREFIX (`s3_connection`'s dict)."""
    return json.loads(_s3(conn, 'list', prefix))


def s3_get(conn: dict[str, str], key: str) -> bytes:
    """The content of object KEY in the relation's bucket."""
    return _s3(conn, 'get', key)


def s3_delete(conn: dict[str, str], key: str) -> None:
    """Deletes object KEY from the relation's bucket."""
    _s3(conn, 'delete', key)


def s3_put(conn: dict[str, str], key: str, data: bytes) -> None:
    """Stores DATA as object KEY in the relation's bucket."""
    _s3(conn, 'put', key, data=data)
