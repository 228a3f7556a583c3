"""Small helpers the scenarios share: each is one or two plain `juju` commands.

Everything here goes through the `juju` CLI (Jubilant), so it runs against a real
controller as well; where JujuLocal and Juju differ, a comment says so.
"""

import json
import shlex
import sys

import jubilant

from conftest import REPO

# NGINX, in front of Synapse, as seen from inside the unit's pod.
URL = 'http://localhost:8080'
MATRIX_CLIENT = REPO / 'tests' / 'e2e' / 'matrix_client.py'


def unit_status(juju: jubilant.Juju, unit: str) -> tuple[str, str]:
    """The unit's workload status and message, as `juju status` shows them."""
    app = unit.split('/')[0]
    ws = juju.status().apps[app].units[unit].workload_status
    return ws.current, ws.message


def in_pod(juju: jubilant.Juju, unit: str, *command: str) -> str:
    """Runs a command in the unit's charm container (the pod's network): `juju exec`.

    The arguments are quoted here: `juju exec` joins them into one shell line.
    """
    return juju.exec(shlex.join(command), unit=unit).stdout


def http_status(juju: jubilant.Juju, unit: str, url: str, *headers: str) -> int:
    """The HTTP status of a GET made inside the pod (0 when nothing answers).

    JujuLocal's charm container is the host's file system, which has curl; on real Juju,
    use a charm base with curl or call the unit's address from the test host instead.
    """
    args = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5']
    for h in headers:
        args += ['-H', h]
    out = juju.exec(shlex.join([*args, url]) + ' || true', unit=unit).stdout
    return int(out.strip() or 0)


def matrix(juju: jubilant.Juju, unit: str, *args: str) -> dict:
    """Runs the Matrix client (matrix-nio, tests/e2e/matrix_client.py) in the unit's pod.

    JujuLocal only: its charm container sees the host's files, so this interpreter and
    the script are there. On real Juju, run the script on the test host against the
    unit's address (or an ingress) instead of through `juju exec`.
    """
    out = in_pod(juju, unit, sys.executable, str(MATRIX_CLIENT), *args)
    return json.loads(out)


def starts(juju: jubilant.Juju, unit: str, container: str, service: str) -> int:
    """How often Pebble has started SERVICE: its `Start service "SERVICE"` tasks, over all
    of the container's changes (a restart or a replan is a stop task and a start task).

    Pebble's own log (`Service "synapse" starting`) is not reachable through `juju`
    (on Kubernetes it is the container's log, `kubectl logs`); its changes are, and they
    count the starts the charm asked for (not Pebble's own restarts of a crashed service).
    """
    out = juju.ssh(
        unit,
        'for id in $(/charm/bin/pebble changes | awk \'NR > 1 {print $1}\'); '
        'do /charm/bin/pebble tasks "$id"; done',
        container=container,
    )
    return sum(1 for line in out.splitlines() if line.endswith(f'Start service "{service}"'))


def wait_serving(juju: jubilant.Juju, unit: str) -> jubilant.Status:
    """Waits until every unit is active and Synapse answers through NGINX."""
    return juju.wait(
        lambda status: jubilant.all_active(status, unit.split('/')[0])
        and http_status(juju, unit, f'{URL}/_matrix/client/versions') == 200,
        error=jubilant.any_error,
        delay=1,
    )


def secret_content(juju: jubilant.Juju, label: str) -> dict[str, str]:
    """The latest content of the charm's secret with this label (`juju secrets`,
    `juju show-secret --reveal`; on Juju, as the model's admin)."""
    for secret in juju.secrets():
        if secret.label == label:
            return juju.show_secret(secret.uri, reveal=True).content
    raise AssertionError(f'no secret labelled {label!r}')

