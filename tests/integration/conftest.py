"""Jubilant integration tests: JujuLocal by default, a real controller with REAL_JUJU=1.

JujuLocal (default): `jujulocal-juju` (built by cargo) is put on PATH as `juju`, so
Jubilant runs exactly as it would against a real controller. Models live in a temporary
JUJULOCAL_HOME whose pods file gives each unit real Pebbles (Synapse from the venv
scripts/setup.sh makes, NGINX from the host) in its own network namespace.

Real Juju (`REAL_JUJU=1`): the `juju` on PATH talks to the current controller (a
MicroK8s cloud); each module gets a temporary model. CHARM_PATH must name the packed
`.charm`, and SYNAPSE_IMAGE / SYNAPSE_NGINX_IMAGE the two OCI images (see
docs/how-to/develop.md). Tests marked `jujulocal_only` are skipped there, each with
its reason.
"""

import fcntl
import os
import pathlib
import tempfile

import jubilant
import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
REAL = os.environ.get('REAL_JUJU', '') not in ('', '0')
TOOLS = pathlib.Path(os.environ.get('SYNAPSE_CHARM_TOOLS', '/opt/synapse-charm'))
TARGET = pathlib.Path(os.environ.get('CARGO_TARGET_DIR', REPO / 'target')) / os.environ.get(
    'JUJULOCAL_PROFILE', 'debug'
)
# JujuLocal: the unpacked charm `make integration` leaves (scripts/pack-charm.sh).
# Real Juju: the packed .charm (`make charm` leaves build/synapse_amd64.charm).
CHARM = pathlib.Path(
    os.environ.get(
        'CHARM_PATH', REPO / 'build' / ('synapse_amd64.charm' if REAL else 'charm')
    )
)
# The charm's two OCI resources. JujuLocal records them (its pods run what its pods
# file says); Juju pulls them, so on real Juju both must be set.
RESOURCES = {
    'synapse-image': os.environ.get('SYNAPSE_IMAGE', 'ghcr.io/canonical/synapse:latest'),
    'synapse-nginx-image': os.environ.get(
        'SYNAPSE_NGINX_IMAGE', 'ghcr.io/canonical/synapse-nginx:latest'
    ),
}
# Every module that uses host-network pods holds this lock: such pods bind the
# host's 8080, 8008, 9000 and 9877.
HOST_NETWORK_LOCK = '/tmp/synapse-charm-host-network.lock'


def pytest_configure(config):
    config.addinivalue_line(
        'markers',
        'jujulocal_only(reason): needs JujuLocal; skipped on a real controller, with the reason',
    )


def pytest_collection_modifyitems(config, items):
    if not REAL:
        return
    for item in items:
        mark = item.get_closest_marker('jujulocal_only')
        if mark is not None:
            reason = mark.kwargs.get('reason') or (mark.args[0] if mark.args else '')
            item.add_marker(pytest.mark.skip(reason=f'JujuLocal only: {reason}'))


def _require(path: pathlib.Path, what: str) -> None:
    if not path.exists():
        pytest.exit(f'{what} not found at {path}: run `make integration`', returncode=2)


@pytest.fixture(scope='session')
def jujulocal_home():
    """JujuLocal's home for the session (None on a real controller)."""
    if REAL:
        _require(CHARM, 'the packed charm (make charm)')
        missing = [v for v in ('SYNAPSE_IMAGE', 'SYNAPSE_NGINX_IMAGE') if v not in os.environ]
        if missing:
            pytest.exit(f'REAL_JUJU=1 needs {" and ".join(missing)} (OCI image references)', 2)
        yield None
        return
    juju_bin = TARGET / 'jujulocal-juju'
    _require(juju_bin, 'the jujulocal-juju binary')
    _require(TARGET / 'jujulocal', 'the jujulocal binary')
    _require(TARGET / 'synapse-stats-exporter', 'the stats exporter')
    _require(TOOLS / 'bin' / 'pebble', 'Pebble')
    _require(CHARM / 'dispatch', 'the packed charm')
    # A short root: a Pebble socket path (<root>/models/<model>/pods/<unit>/containers/
    # <container>/pebble.socket) must fit in the 108 bytes of a Unix socket address.
    with tempfile.TemporaryDirectory(prefix='jl-', dir='/tmp') as home:
        home_path = pathlib.Path(home)
        bin_dir = home_path / 'bin'
        bin_dir.mkdir()
        (bin_dir / 'juju').symlink_to(juju_bin)
        (home_path / 'pods.yaml').write_text(
            f"""\
pebble: {TOOLS / 'bin' / 'pebble'}
netns: true
mounts:
  synapse:
    /opt/synapse: {TOOLS / 'synapse-venv'}
    /usr/local/bin/synapse-stats-exporter: {TARGET / 'synapse-stats-exporter'}
  synapse-nginx:
    /etc/nginx: {REPO / 'nginx_rock' / 'etc' / 'nginx'}
    /var/lib/nginx: tmpfs
    /var/log/nginx: tmpfs
"""
        )
        saved = {k: os.environ.get(k) for k in ('PATH', 'JUJULOCAL_HOME', 'JUJULOCAL_BIN')}
        os.environ['PATH'] = f'{bin_dir}:{os.environ.get("PATH", "")}'
        os.environ['JUJULOCAL_HOME'] = str(home_path)
        os.environ['JUJULOCAL_BIN'] = str(TARGET / 'jujulocal')
        os.environ.setdefault('JUJULOCAL_UPDATE_STATUS_INTERVAL', '5s')
        try:
            yield home_path
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope='module')
def host_network(jujulocal_home):
    """Pods on the host's network, for the module's deploys (JujuLocal's stand-ins, such
    as postgresql-k8s, listen on the host's 127.0.0.1). Holds the host-network lock.

    On a real controller there is nothing to do: every pod reaches every service.
    """
    if jujulocal_home is None:
        yield None
        return
    with open(HOST_NETWORK_LOCK, 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pods = yaml.safe_load((jujulocal_home / 'pods.yaml').read_text())
        pods['netns'] = False
        path = jujulocal_home / 'pods-host-network.yaml'
        path.write_text(yaml.safe_dump(pods))
        saved = os.environ.get('JUJULOCAL_PODS')
        os.environ['JUJULOCAL_PODS'] = str(path)
        try:
            yield path
        finally:
            if saved is None:
                os.environ.pop('JUJULOCAL_PODS', None)
            else:
                os.environ['JUJULOCAL_PODS'] = saved


@pytest.fixture(scope='module')
def juju(jujulocal_home, request):
    with jubilant.temp_model() as juju:
        juju.wait_timeout = 5 * 60
        if jujulocal_home is None:
            # Some tests wait for an update-status (JujuLocal: every 5 s, see above).
            juju.model_config({'update-status-hook-interval': '10s'})
            juju.wait_timeout = 15 * 60
        yield juju
        if request.session.testsfailed:
            print(juju.debug_log(limit=200), end='')
