"""Synapse moves to PostgreSQL when integrated with postgresql-k8s.

On JujuLocal, `juju deploy postgresql-k8s` deploys its stand-in: a played provider that
answers the charm's `postgresql_client` request from a real PostgreSQL server listening
on the host's 127.0.0.1. The Synapse pod reaches it only on the host network: the
`host_network` fixture (requested before `juju`) gives this module's pods the host's
network. On a real controller postgresql-k8s is the real charm (14/stable).
"""

import jubilant
import yaml

from helpers import deploy_synapse

APP = 'synapse'
DB = 'postgresql-k8s'
SERVER_NAME = 'pg.example.com'


def test_synapse_uses_postgresql_k8s(host_network, juju: jubilant.Juju):
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    juju.deploy(DB, channel='14/stable', trust=True)
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
