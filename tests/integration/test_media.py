"""Synapse keeps its media in an S3 bucket when integrated with s3-integrator on its
`media` endpoint (the S3 storage provider module the Synapse rock ships).

On JujuLocal `juju deploy s3-integrator` deploys its stand-in: a played provider backed
by a real S3 server (moto) on the host's 127.0.0.1, so this module's pods use the host
network (`host_network`). On a real controller the bucket is where S3_ENDPOINT,
S3_ACCESS_KEY and S3_SECRET_KEY point (see `deploy_s3`).

One model for the module; the tests run in file order, as an operator's session: media
uploaded before the integration, the integration (one restart), uploads stored in the
bucket and served back through NGINX (also once the pod's local copy is gone), a change
of the provider's data (one restart), no credential where it must not be, and the
relation removed (blocked, naming the bucket) and restored.
"""

import json
import secrets
import shlex
import tempfile

import jubilant
import pytest
import yaml

from helpers import (
    S3_SECRET_KEY,
    _run,
    base_url,
    deploy_s3,
    deploy_synapse,
    matrix,
    s3_connection,
    s3_get,
    s3_list,
    shared_secret,
    starts,
    unit_status,
    wait_serving,
    wait_status,
    wait_update_status,
)

APP = 'synapse'
UNIT = f'{APP}/0'
S3 = 's3-integrator'
SERVER_NAME = 'media.example.com'
PASSWORD = 'correct horse battery'
MARKER = '/data/.charm-media-s3'


@pytest.fixture(scope='module')
def synapse(host_network, juju: jubilant.Juju) -> jubilant.Juju:
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    # Path style: the stand-in's endpoint is an IP address (no virtual-hosted style).
    deploy_s3(juju, S3, path='synapse', **{'s3-uri-style': 'path'})
    wait_serving(juju, UNIT)
    return juju


@pytest.fixture(scope='module')
def alice(synapse: jubilant.Juju) -> dict:
    """alice's access token, and the media she uploaded (filled in as the tests go)."""
    juju = synapse
    url = base_url(juju, UNIT)
    matrix(juju, UNIT, 'register', url, shared_secret(juju, APP), 'alice', PASSWORD)
    token = matrix(juju, UNIT, 'login', url, 'alice', PASSWORD)['access_token']
    return {'url': url, 'token': token}


def upload(juju: jubilant.Juju, alice: dict, content: bytes) -> str:
    """Uploads CONTENT through NGINX as alice; its media id."""
    with tempfile.NamedTemporaryFile(dir='/tmp', suffix='.txt') as f:
        f.write(content)
        f.flush()
        out = _run(
            juju,
            UNIT,
            [
                'curl', '-s', '--max-time', '30', '-X', 'POST',
                '-H', f'Authorization: Bearer {alice["token"]}',
                '-H', 'Content-Type: text/plain',
                '--data-binary', f'@{f.name}',
                f'{alice["url"]}/_matrix/media/v3/upload?filename=note.txt',
            ],
        )
    uri = json.loads(out)['content_uri']
    assert uri.startswith(f'mxc://{SERVER_NAME}/'), out
    return uri.rsplit('/', 1)[1]


def download(juju: jubilant.Juju, alice: dict, media_id: str) -> tuple[int, str]:
    """(HTTP status, body) of an authenticated download through NGINX."""
    url = f'{alice["url"]}/_matrix/client/v1/media/download/{SERVER_NAME}/{media_id}'
    out = _run(
        juju,
        UNIT,
        [
            'curl', '-s', '--max-time', '30', '-w', '\n%{http_code}',
            '-H', f'Authorization: Bearer {alice["token"]}', url,
        ],
    )
    body, _, code = out.rpartition('\n')
    return int(code or 0), body


def local_path(media_id: str) -> str:
    """Where Synapse keeps a local upload in its media store."""
    return f'/data/media_store/local_content/{media_id[:2]}/{media_id[2:4]}/{media_id[4:]}'


def key_of(prefix: str, media_id: str) -> str:
    return prefix + local_path(media_id).removeprefix('/data/media_store/')


def homeserver(juju: jubilant.Juju) -> dict:
    return yaml.safe_load(juju.ssh(UNIT, 'cat /data/homeserver.yaml', container='synapse'))


def synapse_starts(juju: jubilant.Juju) -> int:
    return starts(juju, UNIT, 'synapse', 'synapse')


def test_media_uploaded_before_the_integration(synapse: jubilant.Juju, alice: dict):
    content = f'before the bucket {secrets.token_hex(8)}'
    alice['before'] = (upload(synapse, alice, content.encode()), content)
    assert download(synapse, alice, alice['before'][0]) == (200, content)


def test_integrating_uses_the_bucket_after_one_restart(synapse: jubilant.Juju, alice: dict):
    juju = synapse
    before = synapse_starts(juju)
    juju.integrate(f'{APP}:media', S3)
    juju.wait(lambda s: jubilant.all_active(s, APP), error=jubilant.any_error, delay=1)
    assert synapse_starts(juju) == before + 1, 'one restart'
    conn = s3_connection(juju, UNIT, 'media')
    assert conn['bucket'] == 'synapse-media', 'the bucket the charm asked for'
    providers = homeserver(juju)['media_storage_providers']
    assert providers[0]['module'] == 's3_storage_provider.S3StorageProviderBackend'
    assert providers[0]['store_local'] and providers[0]['store_synchronous']
    assert providers[0]['config']['prefix'] == 'synapse/'
    alice['conn'] = conn


def test_uploads_are_stored_in_the_bucket_and_served_back(synapse: jubilant.Juju, alice: dict):
    juju, conn = synapse, alice['conn']
    content = f'kept in S3 {secrets.token_hex(8)}'
    media_id = upload(juju, alice, content.encode())
    alice['during'] = (media_id, content)
    key = key_of('synapse/', media_id)
    assert key in s3_list(conn, 'synapse/'), 'stored synchronously, before the upload returned'
    assert s3_get(conn, key) == content.encode()
    assert download(juju, alice, media_id) == (200, content)
    # Media from before the integration stay in the local store, served from there.
    media_id, content = alice['before']
    assert download(juju, alice, media_id) == (200, content)
    assert key_of('synapse/', media_id) not in s3_list(conn, 'synapse/')


def test_served_from_the_bucket_once_the_local_copy_is_gone(synapse: jubilant.Juju, alice: dict):
    juju = synapse
    media_id, content = alice['during']
    juju.ssh(UNIT, f'rm {shlex.quote(local_path(media_id))}', container='synapse')
    assert download(juju, alice, media_id) == (200, content)


def test_new_provider_data_restarts_synapse_once(synapse: jubilant.Juju, alice: dict):
    juju = synapse
    before = synapse_starts(juju)
    juju.config(S3, {'path': 'media2'})
    juju.wait(
        lambda _: homeserver(juju)['media_storage_providers'][0]['config']['prefix'] == 'media2/',
        delay=1,
        successes=1,
    )
    juju.wait(lambda s: jubilant.all_active(s, APP), error=jubilant.any_error, delay=1)
    assert synapse_starts(juju) == before + 1, 'one restart'
    wait_update_status(juju, UNIT)
    assert synapse_starts(juju) == before + 1, 'and none in a steady hook'
    media_id = upload(juju, alice, b'under the new prefix')
    assert key_of('media2/', media_id) in s3_list(alice['conn'], 'media2/')


def test_credentials_stay_out_of_plan_argv_status_and_logs(synapse: jubilant.Juju, alice: dict):
    juju = synapse
    modes = juju.ssh(
        UNIT, 'stat -c "%n %a %u" /data/homeserver.yaml', container='synapse'
    ).split()
    assert modes[1:] == ['600', '584792'], 'homeserver.yaml: mode 600, owned by synapse'
    aws = juju.ssh(UNIT, 'cat /data/media-s3.aws-config', container='synapse')
    assert 'addressing_style = path' in aws and S3_SECRET_KEY not in aws
    plan = juju.ssh(UNIT, '/charm/bin/pebble plan', container='synapse')
    assert 'AWS_CONFIG_FILE' in plan and S3_SECRET_KEY not in plan
    argv = juju.ssh(
        UNIT, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '", container='synapse'
    )
    assert 'synapse.app.homeserver' in argv and S3_SECRET_KEY not in argv
    log = juju.debug_log(limit=100000)
    assert S3_SECRET_KEY not in log
    assert S3_SECRET_KEY not in juju.cli('status', '--format', 'json')
    # `juju show-unit` shows the provider's databag, which holds the credentials by the
    # s3 interface's design; nothing of the charm's own carries them.
    shown = json.loads(juju.cli('show-unit', UNIT, '--format', 'json'))[UNIT]
    for rel in shown['relation-info']:
        if rel['endpoint'] == 'media':
            rel.pop('application-data', None)
    assert S3_SECRET_KEY not in json.dumps(shown)


def test_removing_the_relation_blocks_naming_the_bucket(synapse: jubilant.Juju, alice: dict):
    juju = synapse
    before = synapse_starts(juju)
    juju.remove_relation(f'{APP}:media', S3)
    message = wait_status(juju, UNIT, 'blocked', 'media: the S3 integration was removed')
    assert 'bucket "synapse-media"' in message, message
    assert synapse_starts(juju) == before + 1, 'one restart, without the credentials'
    assert 'media_storage_providers' not in homeserver(juju)
    hs_text = juju.ssh(UNIT, 'cat /data/homeserver.yaml', container='synapse')
    assert S3_SECRET_KEY not in hs_text
    # Synapse keeps serving what its local store holds.
    media_id, content = alice['before']
    assert download(juju, alice, media_id) == (200, content)
    wait_update_status(juju, UNIT)
    assert unit_status(juju, UNIT)[0] == 'blocked', 'not forgotten in a steady hook'


def test_integrating_again_serves_the_bucket(synapse: jubilant.Juju, alice: dict):
    juju = synapse
    juju.integrate(f'{APP}:media', S3)
    juju.wait(lambda s: jubilant.all_active(s, APP), error=jubilant.any_error, delay=1)
    juju.ssh(UNIT, f'rm -f {shlex.quote(local_path(alice["during"][0]))}', container='synapse')
    juju.config(S3, {'path': 'synapse'})
    juju.wait(lambda s: jubilant.all_active(s, APP), error=jubilant.any_error, delay=1)
    media_id, content = alice['during']
    assert download(juju, alice, media_id) == (200, content)


def test_the_operator_confirms_a_removal_by_removing_the_marker(
    synapse: jubilant.Juju, alice: dict
):
    juju = synapse
    juju.remove_relation(f'{APP}:media', S3)
    wait_status(juju, UNIT, 'blocked', 'media: the S3 integration was removed')
    juju.ssh(UNIT, f'rm {MARKER}', container='synapse')
    juju.wait(lambda s: jubilant.all_active(s, APP), error=jubilant.any_error, delay=1)

