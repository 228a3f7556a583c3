"""Reachable from outside: Synapse behind traefik-k8s (`ingress`) and
nginx-ingress-integrator (`nginx-route`).

On JujuLocal, `juju deploy traefik-k8s` and `juju deploy nginx-ingress-integrator`
deploy its stand-ins: played providers that read the charm's databags, answer as those
charms do, and configure a real NGINX on the host's 127.0.0.1 as the ingress controller
would be configured. The stand-ins reach the unit's NGINX through the address the unit
publishes, so this module's pods use the host network (`host_network`, requested before
`juju`). Host names such as `<model>-synapse.ingress.test` are in no DNS: requests from
the test host are sent to 127.0.0.1 with the name kept (`curl --resolve`).

The tests run in file order and build on each other, as an operator's session would.
"""

import jubilant
import pytest

from helpers import (
    deploy_synapse,
    ingress_controller_address,
    matrix,
    public_baseurl,
    secret_content,
    starts,
    unit_status,
    via_ingress,
)

APP = 'synapse'
UNIT = f'{APP}/0'
SERVER_NAME = 'ingress.example.com'
TRAEFIK = 'traefik-k8s'
NGINX_INGRESS = 'nginx-ingress-integrator'
PASSWORD = 'correct horse battery'
HELLO = 'hello through the ingress'


def synapse_starts(juju: jubilant.Juju) -> int:
    return starts(juju, UNIT, 'synapse', 'synapse')


def wait_active(juju: jubilant.Juju) -> None:
    juju.wait(lambda s: jubilant.all_active(s, APP), error=jubilant.any_error, delay=1)


def wait_url(juju: jubilant.Juju, predicate) -> str:
    """Waits until Synapse runs with a public_baseurl PREDICATE accepts, and is active."""
    juju.wait(
        lambda s: jubilant.all_active(s, APP) and predicate(public_baseurl(juju, UNIT)),
        error=jubilant.any_error,
        delay=1,
    )
    return public_baseurl(juju, UNIT)


@pytest.fixture(scope='module')
def deployed(host_network, juju: jubilant.Juju) -> str:
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    wait_active(juju)
    assert public_baseurl(juju, UNIT) == f'https://{SERVER_NAME}'
    return APP


def test_path_routed_ingress_serves_clients_and_says_federation_cannot(
    juju: jubilant.Juju, deployed: str
):
    before = synapse_starts(juju)
    juju.deploy(TRAEFIK, channel='latest/stable', trust=True)
    juju.integrate(f'{APP}:ingress', f'{TRAEFIK}:ingress')
    url = wait_url(juju, lambda u: u.endswith(f'/{juju.model}-{APP}'))
    assert synapse_starts(juju) == before + 1, 'one restart for the new URL'

    status, message = unit_status(juju, UNIT)
    assert status == 'active'
    assert f'ingress URL {url} has a path' in message, message
    assert 'federation cannot' in message, message

    # A Matrix client registers, logs in and chats through the ingress URL.
    shared = secret_content(juju, 'synapse-keys')['registration-shared-secret']
    reg = matrix(juju, UNIT, 'register', url, shared, 'alice', PASSWORD)
    assert reg['user_id'] == f'@alice:{SERVER_NAME}', reg
    chat = matrix(juju, UNIT, 'chat', url, 'alice', PASSWORD, HELLO)
    assert HELLO in chat['messages'], chat
    # Synapse tells clients the ingress URL (/.well-known/matrix/client).
    code, body = via_ingress(f'{url}/_matrix/client/versions')
    assert code == 200 and '"versions"' in body, (code, body)


def test_subdomain_routing_gives_a_root_url_that_carries_federation(
    juju: jubilant.Juju, deployed: str
):
    before = synapse_starts(juju)
    juju.config(TRAEFIK, {'routing_mode': 'subdomain', 'external_hostname': 'ingress.test'})
    url = wait_url(juju, lambda u: f'{juju.model}-{APP}.ingress.test' in u)
    assert synapse_starts(juju) == before + 1, 'exactly one restart for the URL change'
    assert unit_status(juju, UNIT) == ('active', ''), 'a root URL: nothing to say'

    code, body = via_ingress(f'{url}/_matrix/key/v2/server')
    assert code == 200 and f'"server_name":"{SERVER_NAME}"' in body.replace(' ', ''), (code, body)
    code, body = via_ingress(f'{url}/_matrix/federation/v1/version')
    assert code == 200 and '"Synapse"' in body, (code, body)
    code, body = via_ingress(f'{url}/_matrix/client/versions')
    assert code == 200, (code, body)

    # Steady: the same state again restarts nothing.
    juju.config(TRAEFIK, {'routing_mode': 'subdomain'})
    wait_active(juju)
    assert synapse_starts(juju) == before + 1


def test_removing_the_ingress_goes_back_to_the_default(juju: jubilant.Juju, deployed: str):
    before = synapse_starts(juju)
    old = public_baseurl(juju, UNIT)
    juju.remove_relation(f'{APP}:ingress', f'{TRAEFIK}:ingress')
    wait_url(juju, lambda u: u == f'https://{SERVER_NAME}')
    assert synapse_starts(juju) == before + 1
    assert unit_status(juju, UNIT) == ('active', '')
    assert via_ingress(f'{old}/_matrix/client/versions')[0] == 404, 'the route is gone'


def test_nginx_route_publishes_the_server_name_and_routes_it(juju: jubilant.Juju, deployed: str):
    before = synapse_starts(juju)
    juju.deploy(NGINX_INGRESS, trust=True)
    juju.integrate(f'{APP}:nginx-route', f'{NGINX_INGRESS}:nginx-route')
    wait_active(juju)
    # The route is for the public host (server_name here), not the application's name.
    address = ingress_controller_address(juju, NGINX_INGRESS)
    port = address.rsplit(':', 1)[1]
    base = f'http://{SERVER_NAME}:{port}'
    code, body = via_ingress(f'{base}/_matrix/client/versions')
    assert code == 200 and '"versions"' in body, (code, body)
    code, body = via_ingress(f'{base}/_matrix/key/v2/server')
    assert code == 200, (code, body)
    assert via_ingress(f'http://{APP}:{port}/_matrix/client/versions')[0] == 404
    assert synapse_starts(juju) == before, 'nginx-route does not touch Synapse'
