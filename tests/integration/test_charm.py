"""Smoke test: the packed charm deployed with Jubilant, configured, active, and used."""

import jubilant

from conftest import CHARM, RESOURCES

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
