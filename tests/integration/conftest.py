"""Jubilant integration tests, run against JujuLocal through its `juju` client.

`jujulocal-juju` (built by cargo) is put on PATH as `juju`, so Jubilant runs exactly as
it would against a real controller. Models live in a temporary JUJULOCAL_HOME whose
pods file gives each unit real Pebbles (Synapse from the venv scripts/setup.sh makes,
NGINX from the host) in its own network namespace.
"""

import os
import pathlib
import tempfile

import jubilant
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOLS = pathlib.Path(os.environ.get('SYNAPSE_CHARM_TOOLS', '/opt/synapse-charm'))
TARGET = pathlib.Path(os.environ.get('CARGO_TARGET_DIR', REPO / 'target')) / os.environ.get(
    'JUJULOCAL_PROFILE', 'debug'
)
# What `make charm` (or scripts/pack-charm.sh) leaves: the unpacked charm.
CHARM = pathlib.Path(os.environ.get('CHARM_PATH', REPO / 'build' / 'charm'))


def _require(path: pathlib.Path, what: str) -> None:
    if not path.exists():
        pytest.exit(f'{what} not found at {path}: run `make integration`', returncode=2)


@pytest.fixture(scope='session')
def jujulocal_home():
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
def juju(jujulocal_home, request):
    with jubilant.temp_model() as juju:
        juju.wait_timeout = 5 * 60
        yield juju
        if request.session.testsfailed:
            print(juju.debug_log(limit=200), end='')
