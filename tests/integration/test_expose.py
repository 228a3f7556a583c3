"""Delegation, the admin API option and the workload version, through the `juju` CLI.

Each well-known answer, the server keys and the federation version are fetched with
`curl` through the unit's NGINX (8080); the version is read from `juju status`, as an
operator sees it. Restart counts come from Pebble's changes (`helpers.starts`): a new
delegation restarts Synapse once (the URL is in homeserver.yaml) and never NGINX, and
the admin API option restarts nothing (NGINX reloads).
"""

import json

import jubilant
import pytest

from helpers import (
    _run,
    base_url,
    deploy_synapse,
    http_get,
    http_status,
    restart_pod,
    starts,
    unit_status,
    wait_serving,
)

APP = 'synapse'
UNIT = f'{APP}/0'
SERVER_NAME = 'example.com'


@pytest.fixture(scope='module')
def synapse(juju: jubilant.Juju) -> jubilant.Juju:
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    wait_serving(juju, UNIT)
    return juju


def get_json(juju: jubilant.Juju, path: str) -> dict:
    body = http_get(juju, UNIT, base_url(juju, UNIT) + path)
    return json.loads(body)


def well_known(juju: jubilant.Juju) -> tuple[dict, dict]:
    return (
        get_json(juju, '/.well-known/matrix/server'),
        get_json(juju, '/.well-known/matrix/client'),
    )


def headers(juju: jubilant.Juju, *curl_args: str) -> tuple[int, dict[str, str]]:
    """The status and (lower-cased) headers of a request made with CURL_ARGS."""
    out = _run(juju, UNIT, ['curl', '-s', '-o', '/dev/null', '-D', '-', '--max-time', '5', *curl_args])
    lines = out.replace('\r', '').splitlines()
    code = int(lines[0].split()[1])
    fields = dict(line.split(': ', 1) for line in lines[1:] if ': ' in line)
    return code, {k.lower(): v for k, v in fields.items()}


def restarts(juju: jubilant.Juju) -> tuple[int, int]:
    return (
        starts(juju, UNIT, 'synapse', 'synapse'),
        starts(juju, UNIT, 'synapse-nginx', 'nginx'),
    )


def wait_http(juju: jubilant.Juju, path: str, code: int) -> None:
    """NGINX applies a reload asynchronously: wait for PATH to answer CODE."""
    url = base_url(juju, UNIT) + path
    juju.wait(lambda _: http_status(juju, UNIT, url) == code, delay=0.5, timeout=60)


def test_server_name_is_the_public_host(synapse: jubilant.Juju):
    server, client = well_known(synapse)
    assert server == {'m.server': 'example.com:443'}
    assert client == {'m.homeserver': {'base_url': 'https://example.com'}}
    code, h = headers(synapse, base_url(synapse, UNIT) + '/.well-known/matrix/client')
    assert code == 200
    assert h['content-type'] == 'application/json'
    assert h['access-control-allow-origin'] == '*'
    assert h['cache-control'] == 'public, max-age=3600'


def test_a_browser_preflight_for_the_client_well_known(synapse: jubilant.Juju):
    code, h = headers(
        synapse,
        '-X',
        'OPTIONS',
        '-H',
        'Origin: https://app.example.org',
        base_url(synapse, UNIT) + '/.well-known/matrix/client',
    )
    assert code == 204
    assert h['access-control-allow-origin'] == '*'


def test_federation_reaches_synapse_and_the_version_is_in_status(synapse: jubilant.Juju):
    keys = get_json(synapse, '/_matrix/key/v2/server')
    assert keys['server_name'] == SERVER_NAME
    assert any(k.startswith('ed25519:') for k in keys['verify_keys'])
    version = get_json(synapse, '/_matrix/federation/v1/version')['server']['version']
    assert synapse.status().apps[APP].version == version


def test_a_base_domain_delegates_to_a_matrix_host(synapse: jubilant.Juju):
    synapse_starts, nginx_starts = restarts(synapse)
    synapse.config(APP, {'public_baseurl': 'https://matrix.example.com'})
    wait_serving(synapse, UNIT)
    server, client = well_known(synapse)
    assert server == {'m.server': 'matrix.example.com:443'}
    assert client == {'m.homeserver': {'base_url': 'https://matrix.example.com'}}
    assert restarts(synapse) == (synapse_starts + 1, nginx_starts)


def test_a_non_default_port(synapse: jubilant.Juju):
    synapse.config(APP, {'public_baseurl': 'https://matrix.example.com:8448/'})
    wait_serving(synapse, UNIT)
    server, client = well_known(synapse)
    assert server == {'m.server': 'matrix.example.com:8448'}
    assert client == {'m.homeserver': {'base_url': 'https://matrix.example.com:8448'}}
    # The version is read again after that restart, and is still Synapse's.
    version = get_json(synapse, '/_matrix/federation/v1/version')['server']['version']
    assert synapse.status().apps[APP].version == version


def test_the_admin_api_is_closed_then_opened_then_refused(synapse: jubilant.Juju):
    admin = '/_synapse/admin/v1/server_version'
    assert http_status(synapse, UNIT, base_url(synapse, UNIT) + admin) == 404
    before = restarts(synapse)
    synapse.config(APP, {'admin_api_allowed_cidrs': '0.0.0.0/0,::/0'})
    wait_http(synapse, admin, 200)
    assert 'server_version' in get_json(synapse, admin)
    # An endpoint that needs an admin's token gets Synapse's answer, not NGINX's.
    users = get_json(synapse, '/_synapse/admin/v2/users')
    assert users['errcode'] == 'M_MISSING_TOKEN'
    assert restarts(synapse) == before, 'NGINX reloads; nothing restarts'
    # A documentation network nobody calls from: everyone else is refused by NGINX.
    synapse.config(APP, {'admin_api_allowed_cidrs': '192.0.2.0/24'})
    wait_http(synapse, admin, 403)
    synapse.config(APP, {'admin_api_allowed_cidrs': '192.0.2.1/24'})
    synapse.wait(lambda s: jubilant.all_blocked(s, APP), delay=0.5)
    assert unit_status(synapse, UNIT) == (
        'blocked',
        'invalid configuration: admin_api_allowed_cidrs: "192.0.2.1/24" has bits set '
        'after the prefix; the network is 192.0.2.0/24',
    )
    synapse.config(APP, reset=['admin_api_allowed_cidrs'])
    wait_serving(synapse, UNIT)
    wait_http(synapse, admin, 404)


def test_pod_churn_brings_the_answers_and_the_version_back(synapse: jubilant.Juju):
    restart_pod(synapse, UNIT)
    status = wait_serving(synapse, UNIT)
    server, _ = well_known(synapse)
    assert server == {'m.server': 'matrix.example.com:8448'}
    version = get_json(synapse, '/_matrix/federation/v1/version')['server']['version']
    assert status.apps[APP].version == version
