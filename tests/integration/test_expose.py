"""Delegation, the admin API option and the workload version, through the `juju` CLI.

Each well-known answer, the server keys and the federation version are fetched with
`curl` through the unit's NGINX (8080); the version is read from `juju status`, as an
operator sees it. `tests/expose_e2e.rs` covers the same with more detail (headers,
the refused address, restarts) on JujuLocal's pods directly.
"""

import json

import jubilant
import pytest

from helpers import (
    base_url,
    deploy_synapse,
    http_get,
    http_status,
    restart_pod,
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


def wait_http(juju: jubilant.Juju, path: str, code: int) -> None:
    """NGINX applies a reload asynchronously: wait for PATH to answer CODE."""
    url = base_url(juju, UNIT) + path
    juju.wait(lambda _: http_status(juju, UNIT, url) == code, delay=0.5, timeout=60)


def test_server_name_is_the_public_host(synapse: jubilant.Juju):
    server, client = well_known(synapse)
    assert server == {'m.server': 'example.com:443'}
    assert client == {'m.homeserver': {'base_url': 'https://example.com'}}


def test_federation_reaches_synapse_and_the_version_is_in_status(synapse: jubilant.Juju):
    keys = get_json(synapse, '/_matrix/key/v2/server')
    assert keys['server_name'] == SERVER_NAME
    assert any(k.startswith('ed25519:') for k in keys['verify_keys'])
    version = get_json(synapse, '/_matrix/federation/v1/version')['server']['version']
    assert synapse.status().apps[APP].version == version


def test_a_base_domain_delegates_to_a_matrix_host(synapse: jubilant.Juju):
    synapse.config(APP, {'public_baseurl': 'https://matrix.example.com'})
    wait_serving(synapse, UNIT)
    server, client = well_known(synapse)
    assert server == {'m.server': 'matrix.example.com:443'}
    assert client == {'m.homeserver': {'base_url': 'https://matrix.example.com'}}


def test_a_non_default_port(synapse: jubilant.Juju):
    synapse.config(APP, {'public_baseurl': 'https://matrix.example.com:8448/'})
    wait_serving(synapse, UNIT)
    server, client = well_known(synapse)
    assert server == {'m.server': 'matrix.example.com:8448'}
    assert client == {'m.homeserver': {'base_url': 'https://matrix.example.com:8448'}}


def test_the_admin_api_is_closed_then_opened_then_refused(synapse: jubilant.Juju):
    admin = '/_synapse/admin/v1/server_version'
    assert http_status(synapse, UNIT, base_url(synapse, UNIT) + admin) == 404
    synapse.config(APP, {'admin_api_allowed_cidrs': '0.0.0.0/0,::/0'})
    wait_http(synapse, admin, 200)
    assert 'server_version' in get_json(synapse, admin)
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
