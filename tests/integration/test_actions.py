"""The operator actions (register-user, promote-user-admin, anonymize-user) on a real
Synapse: what they return, and how they fail (`juju run` raises jubilant.TaskError).

One model and one Synapse for the module; the tests run in file order.
"""

import jubilant
import pytest

from helpers import (
    base_url,
    deploy_synapse,
    http_post,
    http_status,
    matrix,
    secret_content,
    services,
    unit_status,
    wait_serving,
    wait_status,
)

APP = 'synapse'
UNIT = f'{APP}/0'
SERVER_NAME = 'example.com'
# An admin API call, straight to Synapse (port 8008, not through NGINX).
ADMIN_API = '/_synapse/admin/v2/users?limit=1'

passwords: list[str] = []


@pytest.fixture(scope='module')
def synapse(juju: jubilant.Juju) -> jubilant.Juju:
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    wait_serving(juju, UNIT)
    return juju


def register(juju: jubilant.Juju, username: str, **params) -> str:
    """register-user; returns the password it handed over in a Juju secret."""
    task = juju.run(UNIT, 'register-user', {'username': username, **params})
    assert task.status == 'completed'
    assert task.results['user-id'] == f'@{username}:{SERVER_NAME}'
    secret = juju.show_secret(task.results['password-secret-id'], reveal=True)
    password = secret.content['password']
    assert password not in str(task.results), 'the password is only in the secret'
    passwords.append(password)
    return password


def login(juju: jubilant.Juju, user: str, password: str) -> dict:
    return matrix(juju, UNIT, 'login', base_url(juju, UNIT), user, password)


def admin_call(juju: jubilant.Juju, token: str) -> int:
    url = base_url(juju, UNIT, 8008) + ADMIN_API
    return http_status(juju, UNIT, url, f'Authorization: Bearer {token}')


def test_register_user(synapse: jubilant.Juju):
    password = register(synapse, 'alice')
    assert len(password) >= 24
    alice = login(synapse, 'alice', password)
    assert alice['ok'], alice
    assert admin_call(synapse, alice['access_token']) == 403, 'not an admin'

    root = login(synapse, 'root', register(synapse, 'root', admin=True))
    assert admin_call(synapse, root['access_token']) == 200, 'admin=true makes an admin'


def test_promote_user_admin(synapse: jubilant.Juju):
    bob = login(synapse, 'bob', register(synapse, 'bob'))
    assert admin_call(synapse, bob['access_token']) == 403

    task = synapse.run(UNIT, 'promote-user-admin', {'username': 'bob'})
    assert task.status == 'completed'
    assert admin_call(synapse, bob['access_token']) == 200


def test_anonymize_user(synapse: jubilant.Juju):
    password = register(synapse, 'carol')
    carol = f'token:{login(synapse, "carol", password)["access_token"]}'
    dave = f'token:{login(synapse, "dave", register(synapse, "dave"))["access_token"]}'
    matrix(synapse, UNIT, 'set-displayname', base_url(synapse, UNIT), 'carol', carol, 'Carol Liddell')
    profile = matrix(synapse, UNIT, 'profile', base_url(synapse, UNIT), 'dave', dave, f'@carol:{SERVER_NAME}')
    assert profile['displayname'] == 'Carol Liddell'

    task = synapse.run(UNIT, 'anonymize-user', {'username': 'carol'})
    assert task.results['deactivated'] == 'true'
    assert not login(synapse, 'carol', password)['ok'], 'carol can no longer log in'
    profile = matrix(synapse, UNIT, 'profile', base_url(synapse, UNIT), 'dave', dave, f'@carol:{SERVER_NAME}')
    assert profile['displayname'] != 'Carol Liddell', profile


@pytest.mark.parametrize(
    ('action', 'params', 'reason'),
    [
        ('register-user', {'username': 'bob'}, 'user @bob:example.com already exists'),
        ('register-user', {'username': 'Not Valid'}, 'invalid username "Not Valid"'),
        ('promote-user-admin', {'username': 'nobody'}, 'user @nobody:example.com not found'),
        ('anonymize-user', {'username': 'nobody'}, 'user @nobody:example.com not found'),
        ('anonymize-user', {'username': 'carol'}, 'already deactivated'),
    ],
)
def test_actions_fail_with_a_reason(synapse: jubilant.Juju, action, params, reason):
    status = unit_status(synapse, UNIT)
    with pytest.raises(jubilant.TaskError) as failed:
        synapse.run(UNIT, action, params)
    assert failed.value.task.status == 'failed'
    assert reason in failed.value.task.message
    assert unit_status(synapse, UNIT) == status, 'actions never change the unit status'


def test_actions_fail_fast_when_synapse_is_down(synapse: jubilant.Juju):
    status = unit_status(synapse, UNIT)
    synapse.ssh(UNIT, '/charm/bin/pebble stop synapse', container='synapse')
    for action, params in [
        ('register-user', {'username': 'erin'}),
        ('promote-user-admin', {'username': 'bob'}),
    ]:
        with pytest.raises(jubilant.TaskError) as failed:
            synapse.run(UNIT, action, params)
        assert 'Synapse is not answering' in failed.value.task.message
    assert unit_status(synapse, UNIT) == status, 'actions never change the unit status'

    # The next update-status (fired by `juju status` in wait) starts Synapse again.
    wait_serving(synapse, UNIT)


def test_a_rejected_admin_token_is_renewed(synapse: jubilant.Juju):
    # The charm's own admin session, logged out behind its back.
    token = secret_content(synapse, 'synapse-admin')['access-token']
    http_post(
        synapse,
        UNIT,
        base_url(synapse, UNIT, 8008) + '/_matrix/client/v3/logout',
        f'Authorization: Bearer {token}',
    )
    task = synapse.run(UNIT, 'promote-user-admin', {'username': 'root'})
    assert task.status == 'completed'
    assert secret_content(synapse, 'synapse-admin')['access-token'] != token


def test_no_password_in_the_logs(synapse: jubilant.Juju):
    assert passwords, 'run with the tests that register users'
    log = synapse.debug_log(limit=10000)
    for password in passwords:
        assert password not in log


def test_a_second_unit_without_postgresql_runs_nothing_and_says_why(synapse: jubilant.Juju):
    synapse.add_unit(APP)
    second = f'{APP}/1'
    # Workers share Synapse main's database: SQLite on one volume cannot be shared.
    fix = f'run `juju integrate {APP} postgresql-k8s`'
    message = wait_status(synapse, second, 'blocked', '2 units need PostgreSQL')
    assert message == f'2 units need PostgreSQL: {fix}'
    assert all(state != 'active' for state in services(synapse, second, 'synapse').values())
    # Synapse main keeps serving, and says the same.
    main = wait_status(synapse, UNIT, 'blocked', '2 units need PostgreSQL')
    assert main == f'2 units need PostgreSQL: {fix} (Synapse serves from {UNIT} alone meanwhile)'
    command = f'juju scale-application {APP} 1'

    # Actions on it say where to run them instead.
    with pytest.raises(jubilant.TaskError) as failed:
        synapse.run(second, 'register-user', {'username': 'frank'})
    assert failed.value.task.message.startswith(f'Synapse runs on {UNIT}, not on this unit'), (
        failed.value.task.message
    )

    # Scaling back to one unit clears it.
    synapse.cli(*command.split()[1:])
    synapse.wait(
        lambda status: list(status.apps[APP].units) == [UNIT]
        and jubilant.all_active(status, APP),
        delay=1,
    )
