"""Bridges and bots: Synapse as the `matrix-auth` provider.

On JujuLocal `juju deploy matrix-appservice` deploys its bridge stand-in: a played
requirer that encrypts its appservice registration with Fernet from Python's
`cryptography` (as the matrix_auth library does), with the key Synapse shares, and
serves it with a real appservice written with mautrix on the host's 127.0.0.1; so this
module's pods use the host network (`host_network`), and Synapse's `public_baseurl` is
NGINX on 127.0.0.1, the address the appservice reaches Synapse at.

One model for the module, the tests in file order, as an operator's session: a bridge
related (one restart), its appservice registering a user in its namespace, joining a
room a Matrix user invited it to and receiving the user's message through Synapse's
transaction push; a second bridge sending hostile registrations, each blocked with its
exact message while Synapse and the first bridge keep working, then a good one (one
restart); the first relation removed (one restart, its file gone, its token refused,
nothing pushed to it any more).
"""

import json
import urllib.request

import jubilant
import pytest
import yaml

from helpers import (
    base_url,
    deploy_synapse,
    matrix,
    shared_secret,
    starts,
    unit_status,
    wait_serving,
    wait_status,
    wait_until,
    wait_update_status,
)

pytestmark = pytest.mark.jujulocal_only(
    reason='no bridge charm on Charmhub can be told to send a chosen (or broken) '
    'registration; the matrix-appservice stand-in plays one, with a real mautrix appservice'
)

APP = 'synapse'
UNIT = f'{APP}/0'
SERVER_NAME = 'bridges.example.com'
IRC = 'irc'
SLACK = 'slack'
PASSWORD = 'correct horse battery'
REGISTRATIONS = '/data/appservices'


@pytest.fixture(scope='module')
def synapse(host_network, juju: jubilant.Juju) -> jubilant.Juju:
    deploy_synapse(
        juju,
        APP,
        config={'server_name': SERVER_NAME, 'public_baseurl': 'http://127.0.0.1:8080'},
    )
    juju.deploy('matrix-appservice', IRC)
    wait_serving(juju, UNIT)
    return juju


@pytest.fixture(scope='module')
def alice(synapse: jubilant.Juju) -> dict:
    juju = synapse
    url = base_url(juju, UNIT)
    matrix(juju, UNIT, 'register', url, shared_secret(juju, APP), 'alice', PASSWORD)
    token = matrix(juju, UNIT, 'login', url, 'alice', PASSWORD)['access_token']
    return {'url': url, 'token': f'token:{token}'}


def synapse_starts(juju: jubilant.Juju) -> int:
    return starts(juju, UNIT, 'synapse', 'synapse')


def homeserver(juju: jubilant.Juju) -> dict:
    return yaml.safe_load(juju.ssh(UNIT, 'cat /data/homeserver.yaml', container='synapse'))


def listed(juju: jubilant.Juju) -> list[str]:
    return homeserver(juju).get('app_service_config_files') or []


def registration_files(juju: jubilant.Juju) -> list[str]:
    out = juju.ssh(UNIT, f'ls {REGISTRATIONS} 2>/dev/null || true', container='synapse')
    return sorted(out.split())


def bridge_status(juju: jubilant.Juju, app: str) -> tuple[str, str]:
    """The bridge's application status, as `juju status` shows it."""
    status = juju.status().apps[app].app_status
    return status.current, status.message


def appservice_url(juju: jubilant.Juju, app: str) -> str:
    """The stand-in's appservice, from its status (`Serving the appservice at URL`)."""
    _, message = bridge_status(juju, app)
    assert message.startswith('Serving the appservice at '), message
    return message.rsplit(' ', 1)[1]


def appservice(juju: jubilant.Juju, app: str, what: str = 'status') -> dict:
    """What the appservice did (`status`), or its whoami against Synapse now (`whoami`)."""
    url = f'{appservice_url(juju, app)}/_standin/{what}'
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def relation_id(juju: jubilant.Juju, app: str) -> int:
    info = json.loads(juju.cli('show-unit', UNIT, '--format', 'json'))[UNIT]
    for rel in info['relation-info']:
        if rel['endpoint'] == 'matrix-auth' and any(
            u.startswith(f'{app}/') for u in rel.get('related-units') or {}
        ):
            return rel['relation-id']
    raise AssertionError(f'no matrix-auth relation with {app}')


def received(juju: jubilant.Juju, app: str, body: str) -> bool:
    return any(e.get('body') == body for e in appservice(juju, app)['received'])


def test_a_related_bridge_is_loaded_with_one_restart(synapse: jubilant.Juju):
    juju = synapse
    assert bridge_status(juju, IRC) == ('waiting', 'Waiting for the matrix-auth relation')
    before = synapse_starts(juju)
    juju.integrate(f'{APP}:matrix-auth', f'{IRC}:matrix-auth')
    wait_until(juju, lambda: f'{REGISTRATIONS}/{IRC}.yaml' in listed(juju))
    wait_until(juju, lambda: bridge_status(juju, IRC)[0] == 'active')
    assert bridge_status(juju, IRC)[1].startswith('Serving the appservice at http://127.0.0.1:')
    wait_serving(juju, UNIT)
    assert synapse_starts(juju) == before + 1

    # What the bridge got: the homeserver URL and two secrets, none of their content.
    info = json.loads(juju.cli('show-unit', f'{IRC}/0', '--format', 'json'))[f'{IRC}/0']
    data = next(r for r in info['relation-info'] if r['endpoint'] == 'matrix-auth')[
        'application-data'
    ]
    assert data['homeserver'] == 'http://127.0.0.1:8080/'
    assert data['shared_secret_id'].startswith('secret:')
    assert data['encryption_key_secret_id'].startswith('secret:')
    assert shared_secret(juju, APP) not in json.dumps(data)

    # The registration: private to Synapse, as the bridge sent it.
    mode = juju.ssh(UNIT, f'stat -c "%a %U %G" {REGISTRATIONS}/{IRC}.yaml', container='synapse')
    assert mode.split() == ['600', 'synapse', 'synapse']
    reg = yaml.safe_load(juju.ssh(UNIT, f'cat {REGISTRATIONS}/{IRC}.yaml', container='synapse'))
    assert reg['id'] == IRC and reg['sender_localpart'] == f'{IRC}-bot'
    assert reg['namespaces']['users'] == [{'exclusive': True, 'regex': f'@_{IRC}_.*'}]

    # The appservice reaches Synapse with its as_token and registers its puppet.
    puppet = f'@_{IRC}_puppet:{SERVER_NAME}'
    wait_until(juju, lambda: puppet in appservice(juju, IRC)['registered'])
    assert appservice(juju, IRC, 'whoami')['body']['user_id'] == f'@{IRC}-bot:{SERVER_NAME}'

    # Steady hooks change nothing.
    wait_update_status(juju, UNIT)
    assert synapse_starts(juju) == before + 1


def test_the_bridge_joins_a_room_and_receives_messages(synapse: jubilant.Juju, alice: dict):
    juju = synapse
    puppet = f'@_{IRC}_puppet:{SERVER_NAME}'
    room = matrix(juju, UNIT, 'invite', alice['url'], 'alice', alice['token'], puppet)
    alice['room'] = room['room_id']
    # Synapse pushes the invite to the appservice, which joins as its puppet.
    wait_until(juju, lambda: room['room_id'] in appservice(juju, IRC)['joined'])
    members = matrix(juju, UNIT, 'members', alice['url'], 'alice', alice['token'], room['room_id'])
    assert puppet in members['members']
    matrix(juju, UNIT, 'send', alice['url'], 'alice', alice['token'], room['room_id'], 'hello bridge')
    wait_until(juju, lambda: received(juju, IRC, 'hello bridge'))
    event = next(e for e in appservice(juju, IRC)['received'] if e.get('body') == 'hello bridge')
    assert event['sender'] == f'@alice:{SERVER_NAME}'
    assert event['room_id'] == room['room_id']


HOSTILE = [
    (
        {'users-regex': '@slack_(.*'},
        'namespaces.users[0].regex: "@slack_(.*" is not a valid regex: unclosed group',
    ),
    (
        {'users-regex': f'@_{IRC}_.*'},
        'namespaces.users: exclusive regex "@_irc_.*" is already claimed by irc (matrix-auth:{irc})',
    ),
    ({'as-token': 'has space'}, 'as_token: must be printable ASCII without spaces'),
    (
        {'encryption': 'wrong-key'},
        'registration_secret: cannot decrypt: the token\'s signature does not match the key '
        '(encrypted with another key, or altered)',
    ),
]
DEFAULTS = {'users-regex': '', 'as-token': '', 'encryption': ''}


def test_hostile_registrations_block_while_synapse_and_the_other_bridge_work(
    synapse: jubilant.Juju, alice: dict
):
    juju = synapse
    juju.deploy('matrix-appservice', SLACK)
    before = synapse_starts(juju)
    for n, (options, reason) in enumerate(HOSTILE):
        juju.config(SLACK, {**DEFAULTS, **options})
        if n == 0:
            juju.integrate(f'{APP}:matrix-auth', f'{SLACK}:matrix-auth')
        slack, irc = relation_id(juju, SLACK), relation_id(juju, IRC)
        expected = f'matrix-auth:{slack} ({SLACK}): registration left out: ' + reason.format(
            irc=irc
        )
        message = wait_status(juju, UNIT, 'blocked', f'matrix-auth:{slack} ({SLACK})')
        if message != expected:
            # The stand-in may still be sending the previous case's registration.
            message = wait_status(juju, UNIT, 'blocked', expected)
        assert message == expected
        # Synapse serves, without a restart, and the first bridge still works.
        assert synapse_starts(juju) == before
        assert listed(juju) == [f'{REGISTRATIONS}/{IRC}.yaml']
        assert registration_files(juju) == [f'{IRC}.yaml']
        text = f'still bridged {n}'
        matrix(juju, UNIT, 'send', alice['url'], 'alice', alice['token'], alice['room'], text)
        wait_until(juju, lambda: received(juju, IRC, text))

    # A good registration: loaded with one restart, the status clears.
    juju.config(SLACK, DEFAULTS)
    wait_until(juju, lambda: f'{REGISTRATIONS}/{SLACK}.yaml' in listed(juju))
    wait_serving(juju, UNIT)
    assert synapse_starts(juju) == before + 1
    assert registration_files(juju) == [f'{IRC}.yaml', f'{SLACK}.yaml']
    wait_until(juju, lambda: f'@_{SLACK}_puppet:{SERVER_NAME}' in appservice(juju, SLACK)['registered'])


def test_removing_the_relation_stops_the_bridge(synapse: jubilant.Juju, alice: dict):
    juju = synapse
    before = synapse_starts(juju)
    # A room both bridges' puppets are in: a message to it shows when Synapse has pushed.
    puppets = [f'@_{app}_puppet:{SERVER_NAME}' for app in (IRC, SLACK)]
    room = matrix(juju, UNIT, 'invite', alice['url'], 'alice', alice['token'], ','.join(puppets))
    for app in (IRC, SLACK):
        wait_until(juju, lambda app=app: room['room_id'] in appservice(juju, app)['joined'])
    juju.cli('remove-relation', f'{APP}:matrix-auth', f'{IRC}:matrix-auth')
    wait_until(juju, lambda: f'{REGISTRATIONS}/{IRC}.yaml' not in listed(juju))
    wait_serving(juju, UNIT)
    assert synapse_starts(juju) == before + 1, 'one restart'
    assert registration_files(juju) == [f'{SLACK}.yaml'], 'its file is deleted'
    # Synapse no longer knows the bridge's token...
    who = appservice(juju, IRC, 'whoami')
    assert who['status'] == 401 and who['body']['errcode'] == 'M_UNKNOWN_TOKEN', who
    # ... nor pushes to it: the message reaches the other bridge only.
    text = 'after the irc bridge left'
    matrix(juju, UNIT, 'send', alice['url'], 'alice', alice['token'], room['room_id'], text)
    wait_until(juju, lambda: received(juju, SLACK, text))
    assert not received(juju, IRC, text)
    wait_update_status(juju, UNIT)
    assert synapse_starts(juju) == before + 1
    assert unit_status(juju, UNIT) == ('active', '')
