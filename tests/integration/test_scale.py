"""Scale out: Synapse main plus generic workers over Redis, on three real pods.

One model for the module: a real PostgreSQL (the postgresql-k8s stand-in) and a real
Redis (the redis-k8s stand-in), both reachable on JujuLocal's cluster network, and
Synapse scaled 1 -> 3 -> 2 -> 1, then 3 -> 1 at once. At each step a Matrix client on
one unit's entry point sends and a client on another unit's reads in a sync;
Synapse's starts are counted per unit (at most one per affected unit per change).
Scaled out, the main unit also runs the federation sender (`federationsender1`),
started in the replan that restarts Synapse main.
"""

import jubilant
import pytest

from conftest import REAL
from helpers import (
    base_url,
    deploy_synapse,
    matrix,
    services,
    shared_secret,
    starts,
    unit_status,
    wait_status,
    wait_until,
)

pytestmark = pytest.mark.jujulocal_only(reason='counts Pebble changes through JujuLocal pods')

APP = 'synapse'
MAIN = f'{APP}/0'
SENDER = 'synapse-federation-sender'
SERVER_NAME = 'scale.example.com'
PASSWORD = 'correct horse battery'
RESTARTED_BY_PEBBLE = (
    'Synapse was restarted by Pebble (it exited or stopped answering); '
    'waiting for it to be ready'
)


def units(juju: jubilant.Juju) -> list[str]:
    return sorted(juju.status().apps[APP].units)


def all_active(juju: jubilant.Juju, n: int) -> jubilant.Status:
    return juju.wait(
        lambda s: len(s.apps[APP].units) == n and jubilant.all_active(s, APP),
        delay=1,
        successes=3,
    )


def all_starts(juju: jubilant.Juju) -> dict[str, int]:
    return {u: starts(juju, u, 'synapse', 'synapse') for u in units(juju)}


def sender_state(juju: jubilant.Juju) -> str | None:
    """The federation sender's state on the main unit (None: not in the plan)."""
    return services(juju, MAIN, 'synapse').get(SENDER)


def converse(juju: jubilant.Juju, room: dict, sender: str, reader: str, text: str) -> None:
    """TEXT sent through SENDER's NGINX is read in a sync through READER's."""
    url = base_url(juju, sender)
    matrix(juju, sender, 'send', url, 'alice', room['session'], room['room_id'], text)

    def read() -> list[str]:
        return matrix(juju, reader, 'sync-read', base_url(juju, reader), 'alice',
                      room['session'], room['room_id'])['messages']

    # Another process learns of the event through replication (Redis): a client's
    # next sync shows it, as soon as that process has caught up.
    wait_until(juju, lambda: text in read(), timeout=60)


@pytest.fixture(scope='module')
def room(juju: jubilant.Juju) -> dict:
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    juju.deploy('postgresql-k8s')
    juju.deploy('redis-k8s')
    juju.integrate(APP, 'postgresql-k8s')
    juju.integrate(APP, 'redis-k8s')
    all_active(juju, 1)
    url = base_url(juju, MAIN)
    matrix(juju, MAIN, 'register', url, shared_secret(juju, APP), 'alice', PASSWORD)
    chat = matrix(juju, MAIN, 'chat', url, 'alice', PASSWORD, 'one unit')
    return {'session': f'token:{chat["access_token"]}', 'room_id': chat['room_id']}


def test_scale_out_to_three_units(juju: jubilant.Juju, room: dict):
    before = all_starts(juju)
    juju.cli('scale-application', APP, '3')
    all_active(juju, 3)
    after = all_starts(juju)
    assert after[MAIN] - before[MAIN] <= 1, (before, after)
    for worker in (f'{APP}/1', f'{APP}/2'):
        assert after[worker] <= 1, after
        assert services(juju, worker, 'synapse')['synapse'] == 'active'
        plan = juju.ssh(worker, '/charm/bin/pebble plan', container='synapse')
        assert 'synapse.app.generic_worker' in plan and 'stats-exporter' not in plan
        worker_yaml = juju.ssh(worker, 'cat /data/worker.yaml', container='synapse')
        assert f'worker_name: worker{worker[-1]}' in worker_yaml
    config = juju.ssh(MAIN, 'cat /data/homeserver.yaml', container='synapse')
    assert 'synapse-2.synapse-endpoints' in config and 'instance_map' in config
    assert 'federation_sender_instances' in config and 'federationsender1' in config

    # The main unit sends federation through its sender, a generic worker of its own.
    assert sender_state(juju) == 'active'
    assert starts(juju, MAIN, 'synapse', SENDER) == 1
    assert 'federationsender1' not in all_workers_yaml(juju)

    def sender_log() -> str:
        return juju.ssh(MAIN, f'/charm/bin/pebble logs {SENDER} -n 400', container='synapse')

    wait_until(juju, lambda: 'Instance name: federationsender1' in sender_log(), timeout=60)
    assert 'synapse.app.generic_worker' in juju.ssh(
        MAIN, '/charm/bin/pebble plan', container='synapse')

    converse(juju, room, f'{APP}/1', f'{APP}/2', 'sent via unit 1, read via unit 2')
    converse(juju, room, MAIN, f'{APP}/1', 'sent via the main unit, read via unit 1')


def all_workers_yaml(juju: jubilant.Juju) -> str:
    """The worker units' worker.yaml files, together."""
    return ''.join(juju.ssh(w, 'cat /data/worker.yaml', container='synapse')
                   for w in units(juju) if w != MAIN)


def test_a_worker_serves_client_traffic_itself(juju: jubilant.Juju, room: dict):
    worker = f'{APP}/2'
    converse(juju, room, worker, worker, 'served by worker 2')
    logs = juju.ssh(worker, '/charm/bin/pebble logs synapse -n 400', container='synapse')
    assert 'synapse.access.http.8008' in logs and '/_matrix/client/' in logs, logs[-2000:]
    assert '/sync' in logs


def test_losing_redis_blocks_the_workers_and_main_keeps_serving(juju: jubilant.Juju, room: dict):
    juju.remove_relation(APP, 'redis-k8s')
    fix = f'3 units need Redis: run `juju integrate {APP} redis-k8s`'
    for worker in (f'{APP}/1', f'{APP}/2'):
        assert wait_status(juju, worker, 'blocked', fix) == fix
        assert services(juju, worker, 'synapse')['synapse'] != 'active'
    message = wait_status(juju, MAIN, 'blocked', fix)
    assert message == f'{fix} (Synapse serves from {MAIN} alone meanwhile)'
    wait_until(juju, lambda: services(juju, MAIN, 'synapse')['synapse'] == 'active')
    # Main sends federation itself again: its sender is stopped, not restarted.
    wait_until(juju, lambda: sender_state(juju) == 'inactive')
    converse(juju, room, MAIN, MAIN, 'main alone without Redis')

    juju.integrate(APP, 'redis-k8s')
    all_active(juju, 3)
    assert sender_state(juju) == 'active'
    converse(juju, room, f'{APP}/2', f'{APP}/1', 'Redis is back')


def test_a_killed_worker_is_restarted_by_pebble(juju: jubilant.Juju, room: dict):
    worker = f'{APP}/1'
    charm_starts = starts(juju, worker, 'synapse', 'synapse')
    juju.ssh(worker, '/charm/bin/pebble signal KILL synapse', container='synapse')
    # Pebble restarts it by itself (no change of the charm's), and the status says so
    # meanwhile. This is observable whatever the timing: the first hook that sees the
    # new start time (every update-status reads it) remembers, in the unit's hints, the
    # ready check's success count then, and the status stays `waiting` until a later
    # hook sees a success after it. Synapse's ready check still `up` from before the
    # kill, or the worker answering again within a second, cannot end it earlier; so
    # it lasts at least until the next hook (update-status, 5 s later here; the check
    # events need three failed checks first), and this polls once a second.
    # A hook during Pebble's backoff (half a second after one exit) would show the
    # `keeps exiting` status first; the next one to see it running says `waiting`.
    wait_status(juju, worker, 'waiting', RESTARTED_BY_PEBBLE)
    wait_until(juju, lambda: services(juju, worker, 'synapse')['synapse'] == 'active')
    all_active(juju, 3)
    converse(juju, room, worker, worker, 'the worker is back')
    assert starts(juju, worker, 'synapse', 'synapse') == charm_starts


def test_scale_in_to_two_then_one(juju: jubilant.Juju, room: dict):
    before = all_starts(juju)
    juju.cli('scale-application', APP, '2')
    all_active(juju, 2)
    after = all_starts(juju)
    for unit in (MAIN, f'{APP}/1'):
        assert after[unit] - before[unit] <= 1, (before, after)
    config = juju.ssh(f'{APP}/1', 'cat /data/homeserver.yaml', container='synapse')
    assert 'worker2' not in config, 'the removed worker left everyone\'s instance_map'
    converse(juju, room, f'{APP}/1', MAIN, 'two units')

    before = all_starts(juju)
    juju.cli('scale-application', APP, '1')
    all_active(juju, 1)
    assert starts(juju, MAIN, 'synapse', 'synapse') - before[MAIN] <= 1
    assert 'instance_map' not in juju.ssh(MAIN, 'cat /data/homeserver.yaml', container='synapse')
    # One unit: no sender (held off in the plan, stopped), main sends federation.
    assert sender_state(juju) == 'inactive'
    converse(juju, room, MAIN, MAIN, 'one unit again')


def test_three_to_one_at_once_restarts_main_once(juju: jubilant.Juju, room: dict):
    # Both leaving units are `dying` in goal-state from the first departure on, so
    # main drops them from its configuration in one change.
    juju.cli('scale-application', APP, '3')
    all_active(juju, 3)
    before = starts(juju, MAIN, 'synapse', 'synapse')
    juju.cli('scale-application', APP, '1')
    all_active(juju, 1)
    assert starts(juju, MAIN, 'synapse', 'synapse') - before == 1
    assert 'instance_map' not in juju.ssh(MAIN, 'cat /data/homeserver.yaml', container='synapse')
    converse(juju, room, MAIN, MAIN, 'one unit after three')
