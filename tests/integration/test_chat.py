"""Deploy, chat, reconfigure: what an operator and a Matrix user see.

One model (and one Synapse) for the whole module; the tests run in file order and
each builds on the last, as an operator's session would. Counts of Synapse starts are
taken before and after each step, so a single test can also run alone (`-k`).
"""

import jubilant
import pytest

from conftest import REAL
from helpers import (
    base_url,
    deploy_synapse,
    http_get,
    http_status,
    matrix,
    restart_pod,
    services,
    shared_secret,
    starts,
    unit_status,
    wait_serving,
    wait_until,
    wait_update_status,
)

APP = 'synapse'
UNIT = f'{APP}/0'
SERVER_NAME = 'chat.example.com'
PASSWORD = 'correct horse battery'
HELLO = 'hello from the charm test'
SERVICES = [('synapse', 'synapse'), ('synapse-nginx', 'nginx')]


@pytest.fixture(scope='module')
def alice(juju: jubilant.Juju) -> dict:
    """Synapse deployed and serving; alice registered, with a room holding one message.

    Returns her session (an access token: Synapse rate-limits logins) and the room.
    """
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    wait_serving(juju, UNIT)
    url = base_url(juju, UNIT)

    # Shared-secret registration, with the secret the charm keeps in its application secret.
    reg = matrix(juju, UNIT, 'register', url, shared_secret(juju, APP), 'alice', PASSWORD)
    assert reg['user_id'] == f'@alice:{SERVER_NAME}'

    chat = matrix(juju, UNIT, 'chat', url, 'alice', PASSWORD, HELLO)
    assert HELLO in chat['messages'], chat
    return {'session': f'token:{chat["access_token"]}', 'room_id': chat['room_id'], 'url': url}


def test_deploy_and_chat(juju: jubilant.Juju, alice: dict):
    assert unit_status(juju, UNIT) == ('active', '')
    assert http_status(juju, UNIT, alice['url'] + '/health') == 204
    assert '"versions"' in http_get(juju, UNIT, alice['url'] + '/_matrix/client/versions')

    read = matrix(juju, UNIT, 'read', alice['url'], 'alice', alice['session'], alice['room_id'])
    assert HELLO in read['messages']


def test_nothing_restarts_without_a_change(juju: jubilant.Juju, alice: dict):
    synapse_starts = starts(juju, UNIT, 'synapse', 'synapse')
    nginx_starts = starts(juju, UNIT, 'synapse-nginx', 'nginx')
    written = juju.ssh(UNIT, 'stat -c %Y /data/homeserver.yaml', container='synapse')

    wait_update_status(juju, UNIT)
    # The same value again.
    juju.config(APP, {'server_name': SERVER_NAME})

    assert starts(juju, UNIT, 'synapse', 'synapse') == synapse_starts, 'no Synapse restart'
    assert starts(juju, UNIT, 'synapse-nginx', 'nginx') == nginx_starts, 'no NGINX restart'
    assert (
        juju.ssh(UNIT, 'stat -c %Y /data/homeserver.yaml', container='synapse') == written
    ), 'no file write'
    assert unit_status(juju, UNIT) == ('active', '')


def test_config_change_restarts_synapse_once(juju: jubilant.Juju, alice: dict):
    before = matrix(juju, UNIT, 'public-rooms', alice['url'], 'alice', alice['session'])
    assert before['room_id'] in before['listed'], before
    synapse_starts = starts(juju, UNIT, 'synapse', 'synapse')
    nginx_starts = starts(juju, UNIT, 'synapse-nginx', 'nginx')

    juju.config(APP, {'enable_room_list_search': False})
    wait_serving(juju, UNIT)

    assert starts(juju, UNIT, 'synapse', 'synapse') == synapse_starts + 1, 'one restart'
    assert starts(juju, UNIT, 'synapse-nginx', 'nginx') == nginx_starts, 'NGINX untouched'
    after = matrix(juju, UNIT, 'public-rooms', alice['url'], 'alice', alice['session'])
    assert after['listed'] == [], f'room directory search is off: {after}'

    juju.config(APP, {'enable_room_list_search': False})
    assert starts(juju, UNIT, 'synapse', 'synapse') == synapse_starts + 1, 'same value: no restart'


def test_server_name_cannot_change(juju: jubilant.Juju, alice: dict):
    synapse_starts = starts(juju, UNIT, 'synapse', 'synapse')

    juju.config(APP, {'server_name': 'other.example.com'})
    status, message = unit_status(juju, UNIT)
    assert status == 'blocked'
    assert f'server_name cannot change from "{SERVER_NAME}" to "other.example.com"' in message
    assert starts(juju, UNIT, 'synapse', 'synapse') == synapse_starts, 'keeps the old name'
    read = matrix(juju, UNIT, 'read', alice['url'], 'alice', alice['session'], alice['room_id'])
    assert HELLO in read['messages']

    juju.config(APP, {'server_name': SERVER_NAME})
    assert unit_status(juju, UNIT) == ('active', ''), 'back to the old name'
    assert starts(juju, UNIT, 'synapse', 'synapse') == synapse_starts


def test_config_synapse_rejects_keeps_the_last_good_one(juju: jubilant.Juju, alice: dict):
    # The charm accepts these, but the invite-checker module in the image wants more.
    synapse_starts = starts(juju, UNIT, 'synapse', 'synapse')
    juju.config(
        APP,
        {
            'invite_checker_policy_rooms': f'abc:{SERVER_NAME}',
            'invite_checker_blocklist_allowlist_url': 'https://lists.example.com/l.json',
        },
    )
    status, message = unit_status(juju, UNIT)
    assert status == 'blocked', message
    assert message.startswith(
        'Synapse rejects the new configuration '
        '(invite_checker_blocklist_allowlist_url, invite_checker_policy_rooms): '
    ), message
    assert 'Incomplete federation list config' in message
    assert message.endswith('Synapse keeps its last good configuration'), message

    assert starts(juju, UNIT, 'synapse', 'synapse') == synapse_starts, 'no restart'
    files = juju.ssh(UNIT, 'ls /data', container='synapse').split()
    assert 'homeserver.yaml.candidate' not in files, 'no candidate left'
    config = juju.ssh(UNIT, 'cat /data/homeserver.yaml', container='synapse')
    assert 'invite_checker' not in config
    assert http_status(juju, UNIT, alice['url'] + '/_matrix/client/versions') == 200, 'still serving'

    wait_update_status(juju, UNIT)  # the message stays
    assert unit_status(juju, UNIT) == ('blocked', message)

    juju.config(
        APP, reset=['invite_checker_policy_rooms', 'invite_checker_blocklist_allowlist_url']
    )
    assert unit_status(juju, UNIT) == ('active', '')
    assert starts(juju, UNIT, 'synapse', 'synapse') == synapse_starts, 'back without a restart'


def test_invalid_config_blocks_with_the_option_and_reason(juju: jubilant.Juju):
    # A second application in the same model, deployed without a server_name.
    app, unit = 'unconfigured', 'unconfigured/0'
    deploy_synapse(juju, app)
    status, message = unit_status(juju, unit)
    assert status == 'blocked'
    assert message.startswith('invalid configuration: server_name: must be set'), message

    juju.config(app, {'server_name': 'example.com', 'ip_range_whitelist': '10.0.0.0/33'})
    assert unit_status(juju, unit) == (
        'blocked',
        'invalid configuration: ip_range_whitelist: "10.0.0.0/33" is not a CIDR',
    )
    assert starts(juju, unit, 'synapse', 'synapse') == 0, 'nothing started'
    juju.remove_application(app)


def test_files_with_secrets_are_private_to_synapse(juju: jubilant.Juju, alice: dict):
    files = f'/data/homeserver.yaml /data/{SERVER_NAME}.signing.key'
    modes = juju.ssh(UNIT, f'stat -c "%n %a %u" {files}', container='synapse').splitlines()
    assert modes == [f'{f} 600 584792' for f in files.split()], 'mode 600, owned by synapse'
    # The secrets are not in the Pebble plan (only a hash of them is).
    plan = juju.ssh(UNIT, '/charm/bin/pebble plan', container='synapse')
    assert 'command' in plan and shared_secret(juju, APP) not in plan


def test_nginx_stopped_by_hand_comes_back(juju: jubilant.Juju, alice: dict):
    nginx_starts = starts(juju, UNIT, 'synapse-nginx', 'nginx')

    juju.ssh(UNIT, '/charm/bin/pebble stop nginx', container='synapse-nginx')
    assert http_status(juju, UNIT, alice['url'] + '/health') == 0, 'NGINX is down'
    # Its ready check fails 3 times, 10 s apart; the charm starts NGINX again on the
    # next hook that finds it down: synapse-nginx-pebble-check-failed, or an
    # update-status that comes first (tests/check_events_e2e.rs pins the hook path).
    wait_until(juju, lambda: services(juju, UNIT, 'synapse-nginx')['nginx'] == 'active')
    wait_serving(juju, UNIT)

    assert starts(juju, UNIT, 'synapse-nginx', 'nginx') == nginx_starts + 1, 'started once'
    assert unit_status(juju, UNIT) == ('active', '')
    assert http_status(juju, UNIT, alice['url'] + '/health') == 204


def test_pod_churn_keeps_the_server_and_its_data(juju: jubilant.Juju, alice: dict):
    key = juju.ssh(UNIT, f'cat /data/{SERVER_NAME}.signing.key', container='synapse')
    before = {c: starts(juju, UNIT, c, s) for c, s in SERVICES}

    # Fresh containers: their Pebbles know nothing; pebble-ready puts everything back.
    restart_pod(juju, UNIT)
    wait_serving(juju, UNIT)

    assert unit_status(juju, UNIT) == ('active', '')
    for container, service in SERVICES:
        # Pebble keeps its changes in $PEBBLE=/charm/container/pebble, which outlives a
        # container restart (JujuLocal's churn) but not a new pod (Juju's).
        expected = 1 if REAL else before[container] + 1
        assert starts(juju, UNIT, container, service) == expected, f'{service} started once'
    assert juju.ssh(UNIT, f'cat /data/{SERVER_NAME}.signing.key', container='synapse') == key, (
        'the same server keys'
    )
    url = base_url(juju, UNIT)  # on Kubernetes the new pod has a new address
    read = matrix(juju, UNIT, 'read', url, 'alice', alice['session'], alice['room_id'])
    assert HELLO in read['messages'], 'the data survived'
