"""Synapse moves to PostgreSQL when integrated with postgresql-k8s.

On JujuLocal, `juju deploy postgresql-k8s` deploys its stand-in: a played provider that
answers the charm's `postgresql_client` request from a real PostgreSQL server listening
on the host's 127.0.0.1. The Synapse pod reaches it only on the host network, so this
module deploys with a pods file without `netns` (the session's own gives each pod its
own network namespace).
"""

import os
import pathlib

import jubilant
import pytest
import yaml

from conftest import CHARM

APP = 'synapse'
DB = 'postgresql-k8s'
SERVER_NAME = 'pg.example.com'


@pytest.fixture(scope='module')
def host_network_pods(jujulocal_home: pathlib.Path):
    """The session's pods file with `netns: false`, for this module's deploys."""
    pods = yaml.safe_load((jujulocal_home / 'pods.yaml').read_text())
    pods['netns'] = False
    path = jujulocal_home / 'pods-host-network.yaml'
    path.write_text(yaml.safe_dump(pods))
    saved = os.environ.get('JUJULOCAL_PODS')
    os.environ['JUJULOCAL_PODS'] = str(path)
    try:
        yield path
    finally:
        if saved is None:
            os.environ.pop('JUJULOCAL_PODS', None)
        else:
            os.environ['JUJULOCAL_PODS'] = saved


def test_synapse_uses_postgresql_k8s(host_network_pods, juju: jubilant.Juju):
    juju.deploy(CHARM, APP, config={'server_name': SERVER_NAME})
    juju.deploy(DB, trust=True)
    juju.integrate(f'{APP}:database', f'{DB}:database')
    juju.wait(jubilant.all_active, error=jubilant.any_error)

    homeserver = yaml.safe_load(juju.ssh(f'{APP}/0', 'cat /data/homeserver.yaml', container='synapse'))
    database = homeserver['database']
    assert database['name'] == 'psycopg2', database
    assert database['args']['user'].startswith('relation_id_'), database
    assert database['args']['database'] == 'synapse', database

    # Synapse works on it: a user registered now lives in PostgreSQL.
    task = juju.run(f'{APP}/0', 'register-user', {'username': 'bob'})
    assert task.success
    assert task.results['user-id'] == f'@bob:{SERVER_NAME}'
