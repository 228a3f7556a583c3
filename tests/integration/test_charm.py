"""Smoke test: the packed charm deployed with Jubilant, configured, active, and used;
Synapse killed, the status saying Pebble restarted it, then active again."""

import jubilant

from conftest import CHARM, RESOURCES
from helpers import wait_status

APP = 'synapse'
SERVER_NAME = 'jubilant.example.com'


def test_deploy_configure_and_register_user(juju: jubilant.Juju):
    juju.deploy(CHARM, APP, resources=RESOURCES)
    juju.config(APP, {'server_name': SERVER_NAME})
    status = juju.wait(jubilant.all_active, error=jubilant.any_error)
    assert status.apps[APP].units[f'{APP}/0'].leader

    assert juju.config(APP)['server_name'] == SERVER_NAME

    task = juju.run(f'{APP}/0', 'register-user', {'username': 'alice'})
    assert task.success
    assert task.results['user-id'] == f'@alice:{SERVER_NAME}'
    secret = juju.show_secret(task.results['password-secret-id'], reveal=True)
    assert secret.content['password']


def test_a_killed_synapse_is_waited_for_until_ready_again(juju: jubilant.Juju):
    unit = f'{APP}/0'
    juju.ssh(unit, '/charm/bin/pebble signal KILL synapse', container='synapse')
    # Pebble restarts it by itself; the first hook that sees its new start time keeps
    # the unit `waiting` until Synapse's ready check passes after that hook (so no
    # timing can skip it), then the unit is active again.
    wait_status(juju, unit, 'waiting', 'Synapse was restarted by Pebble')
    juju.wait(jubilant.all_active, error=jubilant.any_error)
