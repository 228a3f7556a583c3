"""Backups of what lives only on Synapse's data volume, in the bucket of the `backup`
integration (s3-integrator), and their restore.

On JujuLocal `juju deploy s3-integrator` deploys its stand-in, backed by a real S3 server
(moto) on the host's 127.0.0.1, so this module's pods use the host network
(`host_network`). On a real controller the bucket is where S3_ENDPOINT, S3_ACCESS_KEY and
S3_SECRET_KEY point (see `deploy_s3`).

Synapse runs on SQLite here, so the users come back with the backup's homeserver.db (on
PostgreSQL they stay in the database, backed up by postgresql-k8s).

One model for the module; the tests run in file order, as an operator's session: the
actions refused until the integration and the passphrase are there, a backup made and
listed, decrypted by hand with gpg, the data volume wiped and restored (same signing key,
user and media; Synapse started once), a backup in the reference charm's format restored,
every failure mode, no secret anywhere it must not be, and a backup deleted.
"""

import json
import re
import secrets
import subprocess
import tempfile

import jubilant
import pytest

from helpers import (
    S3_SECRET_KEY,
    _run,
    base_url,
    deploy_s3,
    deploy_synapse,
    http_get,
    matrix,
    s3_connection,
    s3_get,
    s3_list,
    s3_put,
    shared_secret,
    starts,
    unit_status,
    wait_serving,
    wait_status,
    wait_until,
)

APP = 'synapse'
UNIT = f'{APP}/0'
S3 = 's3-integrator'
SERVER_NAME = 'backup.example.com'
PASSWORD = 'correct horse battery'
PASSPHRASE = f'backup passphrase {secrets.token_hex(8)}'
PREFIX = 'synapse-backups/'


@pytest.fixture(scope='module')
def synapse(host_network, juju: jubilant.Juju) -> jubilant.Juju:
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    # Path style: the stand-in's endpoint is an IP address (no virtual-hosted style).
    deploy_s3(juju, S3, path=PREFIX.rstrip('/'), **{'s3-uri-style': 'path'})
    wait_serving(juju, UNIT)
    return juju


@pytest.fixture(scope='module')
def state(synapse: jubilant.Juju) -> dict:
    """What the tests learn as they go: alice's media, the backups made."""
    return {}


def failure(juju: jubilant.Juju, action: str, params: dict | None = None) -> str:
    """Runs ACTION expecting it to fail; its message. The unit status is not touched."""
    before = unit_status(juju, UNIT)
    with pytest.raises(jubilant.TaskError) as failed:
        juju.run(UNIT, action, params or {})
    assert failed.value.task.status == 'failed'
    assert unit_status(juju, UNIT) == before, 'actions never change the unit status'
    return failed.value.task.message


def synapse_starts(juju: jubilant.Juju) -> int:
    return starts(juju, UNIT, 'synapse', 'synapse')


def server_keys(juju: jubilant.Juju) -> set[str]:
    """The ids of the signing keys Synapse publishes (`/_matrix/key/v2/server`)."""
    body = http_get(juju, UNIT, f'{base_url(juju, UNIT)}/_matrix/key/v2/server')
    return set(json.loads(body)['verify_keys'])


def upload(juju: jubilant.Juju, token: str, content: str) -> str:
    """Uploads CONTENT through NGINX; its media id."""
    with tempfile.NamedTemporaryFile('w', dir='/tmp', suffix='.txt') as f:
        f.write(content)
        f.flush()
        out = _run(
            juju,
            UNIT,
            [
                'curl', '-s', '--max-time', '30', '-X', 'POST',
                '-H', f'Authorization: Bearer {token}',
                '-H', 'Content-Type: text/plain',
                '--data-binary', f'@{f.name}',
                f'{base_url(juju, UNIT)}/_matrix/media/v3/upload?filename=note.txt',
            ],
        )
    return json.loads(out)['content_uri'].rsplit('/', 1)[1]


def download(juju: jubilant.Juju, token: str, media_id: str) -> tuple[int, str]:
    url = f'{base_url(juju, UNIT)}/_matrix/client/v1/media/download/{SERVER_NAME}/{media_id}'
    out = _run(
        juju,
        UNIT,
        ['curl', '-s', '--max-time', '30', '-w', '\n%{http_code}', '-H',
         f'Authorization: Bearer {token}', url],
    )
    body, _, code = out.rpartition('\n')
    return int(code or 0), body


def gpg(args: list[str], passphrase: str, data: bytes) -> subprocess.CompletedProcess:
    """The host's gpg in a throw-away home, the passphrase as the first line of stdin."""
    with tempfile.TemporaryDirectory() as home:
        try:
            return subprocess.run(
                ['gpg', '--homedir', home, '--batch', '--quiet', '--pinentry-mode',
                 'loopback', '--passphrase-fd', '0', *args],
                input=passphrase.encode() + b'\n' + data,
                capture_output=True,
            )
        finally:
            subprocess.run(['gpgconf', '--homedir', home, '--kill', 'gpg-agent'],
                           capture_output=True)


def tar_names(archive: bytes) -> list[str]:
    out = subprocess.run(['tar', '-t'], input=archive, capture_output=True, check=True)
    return out.stdout.decode().split()


def test_the_actions_need_the_integration_and_the_passphrase(synapse: jubilant.Juju):
    juju = synapse
    for action in ('create-backup', 'list-backups'):
        assert 'no backup integration' in failure(juju, action)
    assert 'no backup integration' in failure(juju, 'restore-backup', {'backup-id': 'backup-1'})
    juju.integrate(f'{APP}:backup', S3)
    message = wait_status(juju, UNIT, 'active', 'backup: set backup_passphrase')
    assert 'juju config synapse backup_passphrase=' in message
    conn = s3_connection(juju, UNIT, 'backup')
    assert conn['bucket'] == 'synapse-backup', 'the bucket the charm asked for'
    assert 'backup_passphrase is not set' in failure(juju, 'create-backup')
    assert 'backup_passphrase is not set' in failure(
        juju, 'restore-backup', {'backup-id': 'backup-1'}
    )
    # Listing needs no passphrase: nothing there yet.
    assert juju.run(UNIT, 'list-backups').results.get('backups') is None


def test_a_backup_is_encrypted_in_the_bucket_and_listed(synapse: jubilant.Juju, state: dict):
    juju = synapse
    juju.config(APP, {'backup_passphrase': PASSPHRASE})
    wait_until(juju, lambda: unit_status(juju, UNIT) == ('active', ''))
    url = base_url(juju, UNIT)
    matrix(juju, UNIT, 'register', url, shared_secret(juju, APP), 'alice', PASSWORD)
    token = matrix(juju, UNIT, 'login', url, 'alice', PASSWORD)['access_token']
    content = f'kept by the backup {secrets.token_hex(8)}'
    state['media'] = (upload(juju, token, content), content)
    state['keys'] = server_keys(juju)
    before = synapse_starts(juju)
    task = juju.run(UNIT, 'create-backup')
    backup_id = task.results['backup-id']
    assert re.fullmatch(r'backup-\d{20}', backup_id), backup_id
    assert task.results['result'] == 'correct'
    assert synapse_starts(juju) == before, 'a backup does not stop Synapse'
    state['id'] = backup_id
    conn = s3_connection(juju, UNIT, 'backup')
    state['conn'] = conn
    assert PREFIX + backup_id in s3_list(conn, PREFIX)
    listed = juju.run(UNIT, 'list-backups').results
    entry = listed['backups'][backup_id]
    assert int(entry['size']) == int(task.results['size']) > 0
    assert re.match(r'\d{4}-\d\d-\d\dT', entry['last-modified'])
    assert backup_id in listed['formatted'] and 'last-modified' in listed['formatted']


def test_an_operator_decrypts_a_backup_by_hand(synapse: jubilant.Juju, state: dict):
    encrypted = s3_get(state['conn'], PREFIX + state['id'])
    assert b'data/' not in encrypted[:4096], 'encrypted, not a plain tar'
    # An OpenPGP symmetrically encrypted message: gpg says so and how.
    packets = gpg(['--list-packets'], PASSPHRASE, encrypted)
    assert 'cipher 9' in packets.stdout.decode(), 'AES-256'
    plain = gpg(['--decrypt'], PASSPHRASE, encrypted)
    assert plain.returncode == 0, plain.stderr
    names = tar_names(plain.stdout)
    media_id = state['media'][0]
    assert f'data/{SERVER_NAME}.signing.key' in names
    assert 'data/homeserver.db' in names
    assert f'data/media_store/local_content/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}' in names
    assert not any(n.startswith('data/media_store/remote_') for n in names)
    state['tar'] = plain.stdout
    wrong = gpg(['--decrypt'], 'not the passphrase', encrypted)
    assert wrong.returncode != 0


def test_restore_after_the_volume_was_wiped(synapse: jubilant.Juju, state: dict):
    juju = synapse
    juju.ssh(UNIT, 'find /data -mindepth 1 -delete', container='synapse')
    assert juju.ssh(UNIT, 'ls -A /data', container='synapse').strip() == ''
    before = synapse_starts(juju)
    task = juju.run(UNIT, 'restore-backup', {'backup-id': state['id']})
    assert task.results['result'] == 'correct'
    assert synapse_starts(juju) == before + 1, 'Synapse started exactly once'
    wait_serving(juju, UNIT)
    assert server_keys(juju) == state['keys'], 'the same signing key'
    url = base_url(juju, UNIT)
    token = matrix(juju, UNIT, 'login', url, 'alice', PASSWORD)['access_token']
    media_id, content = state['media']
    assert download(juju, token, media_id) == (200, content)
    state['token'] = token
    leftovers = juju.ssh(UNIT, 'ls -A /data', container='synapse').split()
    assert '.charm-restore' not in leftovers and '.charm-restore-previous' not in leftovers


def test_a_backup_in_the_reference_charms_format_restores(synapse: jubilant.Juju, state: dict):
    """The Python charm's backups: `gpg --symmetric` with GnuPG's default cipher and a
    passphrase file, of the same tar layout."""
    juju = synapse
    with tempfile.TemporaryDirectory() as home, tempfile.NamedTemporaryFile('w') as pw:
        pw.write(PASSPHRASE)
        pw.flush()
        made = subprocess.run(
            ['gpg', '--homedir', home, '--batch', '--no-symkey-cache', '--passphrase-file',
             pw.name, '--symmetric'],
            input=state['tar'],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(['gpgconf', '--homedir', home, '--kill', 'gpg-agent'], capture_output=True)
    s3_put(state['conn'], PREFIX + 'backup-20240101000000000000', made)
    # Media uploaded after that backup go; the backup's come back.
    later = upload(juju, state['token'], 'uploaded after the backup')
    before = synapse_starts(juju)
    juju.run(UNIT, 'restore-backup', {'backup-id': 'backup-20240101000000000000'})
    assert synapse_starts(juju) == before + 1
    wait_serving(juju, UNIT)
    # The database is the backup's too: the access token made since is gone.
    assert download(juju, state['token'], later)[0] == 401
    url = base_url(juju, UNIT)
    state['token'] = matrix(juju, UNIT, 'login', url, 'alice', PASSWORD)['access_token']
    assert download(juju, state['token'], later)[0] == 404
    assert download(juju, state['token'], state['media'][0]) == (200, state['media'][1])


def test_failures_leave_synapse_and_its_data_alone(synapse: jubilant.Juju, state: dict):
    juju = synapse
    before = synapse_starts(juju)
    assert failure(juju, 'restore-backup', {'backup-id': 'backup-1'}) == (
        'backup-id backup-1 does not exist'
    )
    assert failure(juju, 'delete-backup', {'backup-id': 'backup-1'}) == (
        'backup-id backup-1 does not exist'
    )
    assert 'is not a backup id' in failure(juju, 'restore-backup', {'backup-id': '../x'})
    # A wrong passphrase: refused after the download, before Synapse is touched.
    juju.config(APP, {'backup_passphrase': 'not the passphrase'})
    wait_status(juju, UNIT, 'active')
    assert 'wrong backup_passphrase' in failure(
        juju, 'restore-backup', {'backup-id': state['id']}
    )
    juju.config(APP, {'backup_passphrase': PASSPHRASE})
    # Not a backup at all.
    s3_put(state['conn'], PREFIX + 'backup-garbage', b'not an OpenPGP message')
    assert 'is not a GnuPG-encrypted backup' in failure(
        juju, 'restore-backup', {'backup-id': 'backup-garbage'}
    )
    assert synapse_starts(juju) == before, 'Synapse never stopped'
    media_id, content = state['media']
    assert download(juju, state['token'], media_id) == (200, content)
    # The bucket becomes unreachable: blocked, naming backup; the actions say why.
    endpoint = state['conn']['endpoint']
    juju.config(S3, {'endpoint': 'http://127.0.0.1:9'})
    message = wait_status(juju, UNIT, 'blocked', 'backup: bucket "synapse-backup"')
    assert 'cannot be accessed' in message and S3_SECRET_KEY not in message
    for action, params in (
        ('create-backup', {}),
        ('list-backups', {}),
        ('restore-backup', {'backup-id': state['id']}),
    ):
        assert 'cannot be accessed' in failure(juju, action, params)
    juju.config(S3, {'endpoint': endpoint})
    wait_status(juju, UNIT, 'active')
    assert synapse_starts(juju) == before


def test_no_secret_in_results_argv_plan_or_logs(synapse: jubilant.Juju, state: dict):
    juju = synapse
    results = str(juju.run(UNIT, 'list-backups').results)
    results += str(juju.run(UNIT, 'create-backup').results)
    plan = juju.ssh(UNIT, '/charm/bin/pebble plan', container='synapse')
    changes = juju.ssh(
        UNIT,
        'for id in $(/charm/bin/pebble changes | awk \'NR > 1 {print $1}\'); '
        'do /charm/bin/pebble tasks "$id"; done',
        container='synapse',
    )
    argv = juju.ssh(
        UNIT, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '", container='synapse'
    )
    log = juju.debug_log(limit=100000)
    status = juju.cli('status', '--format', 'json')
    for text in (results, plan, changes, argv, log, status):
        assert PASSPHRASE not in text
        assert S3_SECRET_KEY not in text
    assert 'Execute command' in changes, 'the backups ran as Pebble execs'


def test_delete_a_backup(synapse: jubilant.Juju, state: dict):
    juju = synapse
    task = juju.run(UNIT, 'delete-backup', {'backup-id': state['id']})
    assert task.results['result'] == 'correct'
    assert PREFIX + state['id'] not in s3_list(state['conn'], PREFIX)
    assert state['id'] not in juju.run(UNIT, 'list-backups').results.get('backups', {})



def test_on_postgresql_the_volume_comes_back_and_the_users_stay(synapse: jubilant.Juju):
    """A homeserver on PostgreSQL (the first goes: both would bind the host's ports):
    the backup holds no database, only the volume's own files; after the volume is
    wiped and restored, the users are there because PostgreSQL kept them."""
    juju = synapse
    app, unit, db = 'homeserver', 'homeserver/0', 'postgresql-k8s'
    juju.remove_application(APP)
    juju.wait(lambda status: APP not in status.apps, delay=1, successes=1)
    deploy_synapse(juju, app, config={'server_name': 'pg-backup.example.com',
                                      'backup_passphrase': PASSPHRASE})
    juju.deploy(db, channel='14/stable', trust=True)
    wait_serving(juju, unit)
    juju.integrate(f'{app}:database', f'{db}:database')
    juju.integrate(f'{app}:backup', S3)
    juju.wait(lambda s: jubilant.all_active(s, app), error=jubilant.any_error, delay=1)
    wait_serving(juju, unit)
    url = base_url(juju, unit)
    matrix(juju, unit, 'register', url, shared_secret(juju, app), 'bob', PASSWORD)
    body = http_get(juju, unit, f'{url}/_matrix/key/v2/server')
    keys = set(json.loads(body)['verify_keys'])
    backup_id = juju.run(unit, 'create-backup').results['backup-id']
    conn = s3_connection(juju, unit, 'backup')
    names = tar_names(gpg(['--decrypt'], PASSPHRASE, s3_get(conn, PREFIX + backup_id)).stdout)
    assert 'data/.charm-database-backend' in names, 'the marker: Synapse ran on PostgreSQL'
    assert not any(n.startswith('data/homeserver.db') for n in names), 'no SQLite database'

    juju.ssh(unit, 'find /data -mindepth 1 -delete', container='synapse')
    before = starts(juju, unit, 'synapse', 'synapse')
    juju.run(unit, 'restore-backup', {'backup-id': backup_id})
    assert starts(juju, unit, 'synapse', 'synapse') == before + 1, 'started once'
    wait_serving(juju, unit)
    body = http_get(juju, unit, f'{url}/_matrix/key/v2/server')
    assert set(json.loads(body)['verify_keys']) == keys, 'the same signing key'
    login = matrix(juju, unit, 'login', url, 'bob', PASSWORD)
    assert login['access_token'], 'bob is still in PostgreSQL'
    homeserver = juju.ssh(unit, 'cat /data/homeserver.yaml', container='synapse')
    assert 'psycopg2' in homeserver, 'still on PostgreSQL'
