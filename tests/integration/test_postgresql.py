"""Synapse moves to PostgreSQL when integrated with postgresql-k8s, and never falls
back to SQLite or onto an empty database.

On JujuLocal, `juju deploy postgresql-k8s` deploys its stand-in: a played provider that
answers the charm's `postgresql_client` request from a real PostgreSQL server listening
on the host's 127.0.0.1. The Synapse pod reaches it only on the host network: the
`host_network` fixture (requested before `juju`) gives this module's pods the host's
network. On a real controller postgresql-k8s is the real charm (14/stable).

One model for the module; the tests run in file order, as an operator's session:
the move, password rotations, an outage, the relation removed, an empty database,
the data back; then a second Synapse whose SQLite already holds a user.
"""

import jubilant
import pytest
import yaml

from helpers import (
    base_url,
    deploy_synapse,
    matrix,
    metric,
    psql,
    restart_pod,
    rotate_database_password,
    services,
    shared_secret,
    start_database,
    starts,
    stop_database,
    unit_status,
    wait_serving,
    wait_status,
    wait_until,
    wait_update_status,
)

APP = 'synapse'
UNIT = f'{APP}/0'
DB = 'postgresql-k8s'
SERVER_NAME = 'pg.example.com'
PASSWORD = 'correct horse battery'
MESSAGE = 'stored in postgres'
NO_ROTATION = (
    'postgresql-k8s 14 cannot rotate a relation user\'s password from the CLI, and '
    'restarts its own server: the stand-in\'s server and secret are driven directly'
)


@pytest.fixture(scope='module')
def synapse(host_network, juju: jubilant.Juju) -> jubilant.Juju:
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    juju.deploy(DB, channel='14/stable', trust=True)
    wait_serving(juju, UNIT)
    return juju


@pytest.fixture(scope='module')
def alice(synapse: jubilant.Juju) -> dict:
    """Filled in by the move: alice's session and her room (on PostgreSQL)."""
    return {}


def homeserver(juju: jubilant.Juju, unit: str = UNIT) -> dict:
    return yaml.safe_load(juju.ssh(unit, 'cat /data/homeserver.yaml', container='synapse'))


def public_tables(juju: jubilant.Juju, app: str = DB) -> str:
    sql = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    return psql(juju, app, sql, database='synapse')


def read(juju: jubilant.Juju, alice: dict) -> list[str]:
    url = base_url(juju, UNIT)
    return matrix(juju, UNIT, 'read', url, 'alice', alice['session'], alice['room'])['messages']


def all_stopped(juju: jubilant.Juju) -> bool:
    return all(state != 'active' for state in services(juju, UNIT, 'synapse').values())


def test_synapse_moves_to_postgresql(synapse: jubilant.Juju, alice: dict):
    before = starts(synapse, UNIT, 'synapse', 'synapse')
    synapse.integrate(f'{APP}:database', f'{DB}:database')
    synapse.wait(jubilant.all_active, error=jubilant.any_error, delay=1)
    wait_serving(synapse, UNIT)

    assert starts(synapse, UNIT, 'synapse', 'synapse') == before + 1, 'one restart to move'
    database = homeserver(synapse)['database']
    assert database['name'] == 'psycopg2', database
    assert database['args']['user'].startswith('relation_id_'), database
    assert database['args']['database'] == 'synapse', database
    locale = "SELECT datcollate || ' ' || datctype FROM pg_database WHERE datname = 'synapse'"
    assert psql(synapse, DB, locale) == 'C C', 'the empty database got the C locale'

    # Users and rooms land in PostgreSQL, and the stats exporter counts them.
    url = base_url(synapse, UNIT)
    secret = shared_secret(synapse, APP)
    for user in ('alice', 'bob'):
        matrix(synapse, UNIT, 'register', url, secret, user, PASSWORD)
    chat = matrix(synapse, UNIT, 'chat', url, 'alice', PASSWORD, MESSAGE)
    alice.update(session=f'token:{chat["access_token"]}', room=chat['room_id'])
    matrix(synapse, UNIT, 'public-rooms', url, 'alice', alice['session'])
    users = int(psql(synapse, DB, 'SELECT count(*) FROM users', database='synapse'))
    rooms = int(psql(synapse, DB, 'SELECT count(*) FROM rooms', database='synapse'))
    assert (users, rooms) == (2, 2)
    wait_until(
        synapse,
        lambda: metric(synapse, UNIT, 'synapse_total_users') == users
        and metric(synapse, UNIT, 'synapse_total_rooms') == rooms,
        timeout=60,
    )
    assert metric(synapse, UNIT, 'synapse_stats_exporter_last_poll_success') == 1


@pytest.mark.jujulocal_only(reason=NO_ROTATION)
def test_password_rotation_restarts_synapse_once(synapse: jubilant.Juju, alice: dict):
    before = starts(synapse, UNIT, 'synapse', 'synapse')
    exporter = starts(synapse, UNIT, 'synapse', 'stats-exporter')

    rotate_database_password(synapse, DB, 'rotated-password')
    wait_serving(synapse, UNIT)

    assert starts(synapse, UNIT, 'synapse', 'synapse') == before + 1, 'one Synapse restart'
    assert starts(synapse, UNIT, 'synapse', 'stats-exporter') == exporter + 1
    assert MESSAGE in read(synapse, alice)
    polls = metric(synapse, UNIT, 'synapse_stats_exporter_polls_total') or 0
    wait_until(
        synapse,
        lambda: (metric(synapse, UNIT, 'synapse_stats_exporter_polls_total') or 0) > polls
        and metric(synapse, UNIT, 'synapse_stats_exporter_last_poll_success') == 1,
        timeout=60,
    )


@pytest.mark.jujulocal_only(reason=NO_ROTATION)
def test_a_password_postgresql_refuses_is_not_used(synapse: jubilant.Juju, alice: dict):
    # The charm tries the new password before Synapse does, says why in the status,
    # and Synapse keeps serving with the one that works.
    before = starts(synapse, UNIT, 'synapse', 'synapse')
    rotate_database_password(synapse, DB, 'not-the-password', apply=False)
    message = wait_status(synapse, UNIT, 'waiting', 'cannot reach PostgreSQL at 127.0.0.1:')
    assert 'password authentication failed' in message, message
    assert 'not-the-password' not in message, 'no password in the status'
    # A steady hook keeps saying so: never `active` with credentials that are refused.
    wait_update_status(synapse, UNIT)
    assert unit_status(synapse, UNIT) == ('waiting', message)
    assert starts(synapse, UNIT, 'synapse', 'synapse') == before, 'no restart'
    assert MESSAGE in read(synapse, alice), 'still serving'

    rotate_database_password(synapse, DB, 'rotated-password', apply=False)
    wait_status(synapse, UNIT, 'active')
    assert starts(synapse, UNIT, 'synapse', 'synapse') == before, 'still no restart'


@pytest.mark.jujulocal_only(reason=NO_ROTATION)
def test_database_outage_and_recovery(synapse: jubilant.Juju, alice: dict):
    stop_database(synapse, DB)
    # While Synapse runs, its ready check does not touch the database: the status
    # says PostgreSQL does not answer (from the stats exporter's failing polls).
    message = wait_status(synapse, UNIT, 'waiting', 'PostgreSQL is not answering', timeout=120)
    assert "stats exporter's last poll failed" in message, message

    # A new pod cannot start Synapse: blocked with Synapse's own error, never active
    # or "starting" forever.
    restart_pod(synapse, UNIT)
    message = wait_status(
        synapse,
        UNIT,
        'blocked',
        'Synapse keeps exiting',
        error=lambda status: status.apps[APP].units[UNIT].workload_status.current == 'active',
        timeout=180,
    )
    assert 'last log line: ' in message, message

    start_database(synapse, DB)
    wait_serving(synapse, UNIT)
    assert unit_status(synapse, UNIT) == ('active', '')
    assert MESSAGE in read(synapse, alice)


def test_relation_removed_stops_synapse_and_leaves_sqlite_alone(synapse: jubilant.Juju):
    def sqlite() -> str:
        return synapse.ssh(UNIT, 'stat -c "%s %Y" /data/homeserver.db || true', container='synapse')

    kept = sqlite()
    synapse.remove_relation(f'{APP}:database', f'{DB}:database')
    wait_status(synapse, UNIT, 'blocked', 'the database integration was removed')
    wait_until(synapse, lambda: all_stopped(synapse), timeout=60)
    assert set(services(synapse, UNIT, 'synapse')) >= {'synapse', 'stats-exporter'}

    wait_update_status(synapse, UNIT)
    assert all_stopped(synapse), 'still stopped after an update-status'
    assert unit_status(synapse, UNIT)[0] == 'blocked'
    assert sqlite() == kept, 'SQLite untouched'
    assert homeserver(synapse)['database']['name'] == 'psycopg2', 'not re-rendered for SQLite'
    files = synapse.ssh(UNIT, 'ls -A /data', container='synapse').split()
    assert 'stats-exporter.password' not in files, "the exporter's credentials went too"


def test_an_empty_database_is_not_used(synapse: jubilant.Juju):
    # The database with Synapse's data is put aside; the next integration gets a new,
    # empty one. Synapse is never brought up empty: it stays stopped, and says why.
    psql(synapse, DB, 'ALTER DATABASE synapse RENAME TO synapse_kept')
    synapse.integrate(f'{APP}:database', f'{DB}:database')
    message = wait_status(
        synapse,
        UNIT,
        'blocked',
        'database "synapse" holds no Synapse data, but Synapse\'s data was in PostgreSQL',
    )
    assert 'integrate the database that holds it' in message, message
    assert all_stopped(synapse), 'Synapse stays stopped'
    assert public_tables(synapse) == '0', 'nothing was created in the empty database'


def test_the_database_with_the_data_comes_back(synapse: jubilant.Juju, alice: dict):
    psql(synapse, DB, 'DROP DATABASE synapse WITH (FORCE)')
    psql(synapse, DB, 'ALTER DATABASE synapse_kept RENAME TO synapse')
    # What docs/how-to/postgresql.md says: integrate again.
    synapse.remove_relation(f'{APP}:database', f'{DB}:database')
    wait_status(synapse, UNIT, 'blocked', 'the database integration was removed')
    synapse.integrate(f'{APP}:database', f'{DB}:database')
    wait_serving(synapse, UNIT)

    assert unit_status(synapse, UNIT) == ('active', '')
    login = matrix(synapse, UNIT, 'login', base_url(synapse, UNIT), 'bob', PASSWORD)
    assert login['ok'], login
    assert MESSAGE in read(synapse, alice), 'all of the data is back'


def test_sqlite_with_data_is_not_abandoned(synapse: jubilant.Juju):
    # A second homeserver (the first goes: both would bind the host's ports), with a
    # user on SQLite, and a second, empty PostgreSQL.
    app, unit, db = 'homeserver', 'homeserver/0', 'empty-db'
    synapse.remove_application(APP)
    synapse.wait(lambda status: APP not in status.apps, delay=1, successes=1)
    deploy_synapse(synapse, app, config={'server_name': 'sqlite.example.com'})
    synapse.deploy(DB, db, channel='14/stable', trust=True)
    wait_serving(synapse, unit)
    url = base_url(synapse, unit)
    matrix(synapse, unit, 'register', url, shared_secret(synapse, app), 'carol', PASSWORD)
    before = starts(synapse, unit, 'synapse', 'synapse')

    synapse.integrate(f'{app}:database', f'{db}:database')
    message = wait_status(synapse, unit, 'blocked', 'the SQLite database holds 1 users and 0 rooms')
    assert starts(synapse, unit, 'synapse', 'synapse') == before, 'Synapse keeps running on SQLite'
    login = matrix(synapse, unit, 'login', url, 'carol', PASSWORD)
    assert login['ok'], f'the SQLite users still work: {login}; {message}'
    assert public_tables(synapse, db) == '0', 'nothing was written to PostgreSQL'
