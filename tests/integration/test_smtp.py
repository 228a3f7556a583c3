"""Synapse sends mail through smtp-integrator's relay: a real SMTP server (aiosmtpd,
started here) receives a password-reset mail whose link, followed through NGINX, lets
the user set a new password.

On JujuLocal, `juju deploy smtp-integrator` deploys its stand-in: a played provider
that publishes the relay its options describe (`juju config smtp-integrator ...`), the
password in a secret, as the real charm does. The relay listens on the host's
127.0.0.1, so this module's pods use the host network (`host_network`). On a real
controller smtp-integrator is the real charm, and the relay must be reachable from the
pods: set SMTP_SINK_ADDRESS to an address of the test host the pods can reach (the
server listens on all of the host's addresses), or the module is skipped.

The relay offers STARTTLS with a certificate of a test CA, and AUTH once TLS is on.
Synapse checks the relay's certificate against the CA bundle of its container: on
JujuLocal this module's pods file mounts the system bundle plus the test CA there
(`/etc/ssl/certs/ca-certificates.crt` in the `synapse` container), so the STARTTLS
delivery runs on JujuLocal only.

One model for the module; the tests run in file order, as an operator's session.
"""

import email
import email.policy
import os
import pathlib
import re
import socket
import subprocess
import tempfile

import jubilant
import pytest
import yaml

from conftest import REAL, REPO, TOOLS
from helpers import (
    base_url,
    deploy_synapse,
    matrix,
    shared_secret,
    starts,
    wait_serving,
    wait_status,
    wait_until,
)

APP = 'synapse'
UNIT = f'{APP}/0'
SMTP = 'smtp-integrator'
SERVER_NAME = 'mail.example.com'
ALICE_MAIL = 'alice@example.org'
PASSWORD = 'correct horse battery'
NEW_PASSWORD = 'staple battery horse'
RELAY_PASSWORD = 'relay-p4ss-word'
ROTATED_PASSWORD = 'relay-rotated-p4ss'
SINK = REPO / 'tests' / 'e2e' / 'smtp_sink.py'
SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
NO_TLS_CA = (
    "Synapse verifies the relay's certificate against its container's CA bundle; "
    'only JujuLocal can add the test CA to it (a pods-file mount)'
)
NO_MAIL = 'enable_email_notifs has no effect: no mail is sent without an smtp integration'


class Sink:
    """The SMTP server: where it listens and the mails it received."""

    def __init__(self, address: str, port: int, maildir: pathlib.Path, ca_bundle: pathlib.Path):
        self.address, self.port, self.maildir = address, port, maildir
        self.ca_bundle = ca_bundle
        # The name its certificate is for (and resolves to where it listens here).
        self.tls_host = address if REAL else 'localhost'

    def mails(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(self.maildir.glob('*.eml'))
        ]


def make_certificates(d: pathlib.Path) -> None:
    """A test CA and a certificate for localhost and 127.0.0.1 (openssl)."""

    def openssl(*args: str) -> None:
        subprocess.run(['openssl', *args], check=True, capture_output=True, cwd=d)

    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key',
            '-out', 'ca.pem', '-days', '2', '-subj', '/CN=synapse-charm test CA')
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'relay.key', '-out',
            'relay.csr', '-subj', '/CN=localhost')
    (d / 'ext').write_text('subjectAltName=DNS:localhost,IP:127.0.0.1\n')
    openssl('x509', '-req', '-in', 'relay.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-CAcreateserial', '-out', 'relay.pem', '-days', '2', '-extfile', 'ext')
    system = pathlib.Path(SYSTEM_CA_BUNDLE)
    bundle = (system.read_text() if system.exists() else '') + (d / 'ca.pem').read_text()
    (d / 'bundle.pem').write_text(bundle)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def sink():
    if REAL and 'SMTP_SINK_ADDRESS' not in os.environ:
        pytest.skip('on a real controller, SMTP_SINK_ADDRESS must name an address of this host the pods reach')
    address = os.environ.get('SMTP_SINK_ADDRESS', '127.0.0.1')
    listen = '0.0.0.0' if REAL else '127.0.0.1'
    port = free_port()
    python = TOOLS / 'smtp-venv' / 'bin' / 'python'
    if not python.exists():
        pytest.exit(f'aiosmtpd venv not found at {python}: run `make integration`', returncode=2)
    with tempfile.TemporaryDirectory(prefix='smtp-sink-') as d:
        maildir = pathlib.Path(d) / 'mail'
        make_certificates(pathlib.Path(d))
        proc = subprocess.Popen(
            [str(python), str(SINK), listen, str(port), str(maildir),
             f'{d}/relay.pem', f'{d}/relay.key'],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            # The server prints `ready` once it accepts connections.
            assert proc.stdout is not None and proc.stdout.readline().strip() == 'ready'
            yield Sink(address, port, maildir, pathlib.Path(d) / 'bundle.pem')
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope='module')
def synapse(host_network, sink: Sink, juju: jubilant.Juju) -> jubilant.Juju:
    if host_network is not None:
        # JujuLocal: the synapse container trusts the relay's test CA.
        pods = yaml.safe_load(pathlib.Path(host_network).read_text())
        pods['mounts']['synapse'][SYSTEM_CA_BUNDLE] = str(sink.ca_bundle)
        pathlib.Path(host_network).write_text(yaml.safe_dump(pods))
    deploy_synapse(juju, APP, config={'server_name': SERVER_NAME})
    juju.deploy(SMTP, channel='latest/stable')
    wait_serving(juju, UNIT)
    return juju


def homeserver(juju: jubilant.Juju) -> dict:
    return yaml.safe_load(juju.ssh(UNIT, 'cat /data/homeserver.yaml', container='synapse'))


def synapse_starts(juju: jubilant.Juju) -> int:
    return starts(juju, UNIT, 'synapse', 'synapse')


def test_enable_email_notifs_without_smtp_says_why_nothing_is_sent(synapse: jubilant.Juju):
    before = synapse_starts(synapse)
    synapse.config(APP, {'enable_email_notifs': True})
    assert wait_status(synapse, UNIT, 'active', NO_MAIL) == NO_MAIL
    assert 'email' not in homeserver(synapse)
    assert synapse_starts(synapse) == before, 'no email section: nothing to restart for'


def test_a_bad_notif_from_blocks_naming_the_option(synapse: jubilant.Juju):
    synapse.config(APP, {'notif_from': 'not-an-address'})
    message = wait_status(synapse, UNIT, 'blocked', 'invalid configuration: notif_from: ')
    assert 'is not an email address' in message
    synapse.config(APP, {'notif_from': f'Chat <chat@{SERVER_NAME}>'})
    wait_status(synapse, UNIT, 'active')


def test_the_integration_turns_mail_on_with_one_restart(synapse: jubilant.Juju, sink: Sink):
    before = synapse_starts(synapse)
    synapse.config(SMTP, {'host': sink.address, 'port': str(sink.port)})
    synapse.integrate(APP, SMTP)
    wait_status(synapse, UNIT, 'active', '')
    wait_until(synapse, lambda: 'email' in homeserver(synapse))
    wait_serving(synapse, UNIT)
    assert synapse.status().apps[APP].units[UNIT].workload_status.message == ''
    assert synapse_starts(synapse) == before + 1
    section = homeserver(synapse)['email']
    assert section['smtp_host'] == sink.address and section['smtp_port'] == sink.port
    assert section['enable_tls'] is False and section['force_tls'] is False
    assert section['notif_from'] == f'Chat <chat@{SERVER_NAME}>'
    assert section['enable_notifs'] is True
    assert 'smtp_pass' not in section, 'auth_type none: no credentials'


def test_a_password_reset_mail_arrives_and_its_link_works(synapse: jubilant.Juju, sink: Sink):
    url = base_url(synapse, UNIT)
    secret = shared_secret(synapse, APP)
    matrix(synapse, UNIT, 'register', url, secret, 'alice', PASSWORD)
    root = matrix(synapse, UNIT, 'register', url, secret, 'root', PASSWORD)
    synapse.run(UNIT, 'promote-user-admin', {'username': 'root'})
    # The admin API is closed in NGINX by default: bind the address on Synapse's port.
    bound = matrix(
        synapse, UNIT, 'add-email', base_url(synapse, UNIT, 8008), root['access_token'],
        f'@alice:{SERVER_NAME}', ALICE_MAIL,
    )
    assert bound['status'] == 200, bound

    # Through NGINX, as a client does.
    asked = matrix(synapse, UNIT, 'reset-request', url, ALICE_MAIL, 'client-secret-1')
    assert asked['status'] == 200 and asked.get('sid'), asked
    wait_until(synapse, lambda: any(m['To'] == ALICE_MAIL for m in sink.mails()), timeout=60)
    mail = next(m for m in sink.mails() if m['To'] == ALICE_MAIL)
    assert f'chat@{SERVER_NAME}' in mail['From']
    assert (mail['X-Sink-TLS'], mail['X-Sink-Auth']) == ('no', 'none'), 'plain SMTP, no login'
    text = mail.get_body(preferencelist=('plain',)).get_content()
    links = re.findall(r'https?://\S+/_synapse/client/password_reset/email/submit_token\?\S+', text)
    assert links, text

    followed = matrix(synapse, UNIT, 'follow-link', url, links[0])
    assert (followed['get'], followed['post']) == (200, 200), followed
    changed = matrix(
        synapse, UNIT, 'reset-password', url, asked['sid'], 'client-secret-1', NEW_PASSWORD
    )
    assert changed['status'] == 200, changed
    assert matrix(synapse, UNIT, 'login', url, 'alice', NEW_PASSWORD).get('access_token')


def test_unsupported_combinations_block_by_name(synapse: jubilant.Juju, sink: Sink):
    synapse.config(
        SMTP,
        {'host': sink.tls_host, 'auth_type': 'plain', 'user': 'synapse', 'password': RELAY_PASSWORD},
    )
    message = wait_status(synapse, UNIT, 'blocked', 'smtp: auth_type plain with transport_security none')
    assert message.endswith('is not supported')
    wait_until(synapse, lambda: 'email' not in homeserver(synapse))
    synapse.config(SMTP, {'transport_security': 'starttls', 'skip_ssl_verify': 'true'})
    wait_status(synapse, UNIT, 'blocked', 'smtp: skip_ssl_verify=True')


def test_the_relay_password_lives_only_in_homeserver_yaml(synapse: jubilant.Juju):
    before = synapse_starts(synapse)
    synapse.config(SMTP, {'skip_ssl_verify': 'false'})
    wait_status(synapse, UNIT, 'active', '')
    wait_serving(synapse, UNIT)
    section = homeserver(synapse)['email']
    assert section['smtp_user'] == 'synapse' and section['smtp_pass'] == RELAY_PASSWORD
    assert section['require_transport_security'] is True and section['enable_tls'] is True
    assert synapse_starts(synapse) == before + 1
    mode = synapse.ssh(UNIT, 'stat -c "%a %U" /data/homeserver.yaml', container='synapse')
    assert mode.split() == ['600', 'synapse']
    plan = synapse.ssh(UNIT, '/charm/bin/pebble plan', container='synapse')
    argv = synapse.ssh(UNIT, 'cat /proc/[0-9]*/cmdline | tr "\\0" " "', container='synapse')
    for where, text in (
        ('the Pebble plan', plan),
        ('a process argv', argv),
        ('juju show-unit', synapse.cli('show-unit', UNIT)),
        ('the debug log', synapse.cli('debug-log', '--replay', '--no-tail')),
    ):
        assert RELAY_PASSWORD not in text, f'the relay password is in {where}'


def reset_mail(juju: jubilant.Juju, sink: Sink, client_secret: str) -> email.message.EmailMessage:
    """Asks for a password-reset mail to alice (through NGINX) and waits for it."""
    seen = len(sink.mails())
    asked = matrix(juju, UNIT, 'reset-request', base_url(juju, UNIT), ALICE_MAIL, client_secret)
    assert asked['status'] == 200, asked
    wait_until(juju, lambda: len(sink.mails()) > seen, timeout=60)
    return sink.mails()[-1]


@pytest.mark.jujulocal_only(reason=NO_TLS_CA)
def test_mail_goes_over_starttls_with_the_relay_password(synapse: jubilant.Juju, sink: Sink):
    mail = reset_mail(synapse, sink, 'client-secret-2')
    assert mail['To'] == ALICE_MAIL
    assert mail['X-Sink-TLS'] == 'yes', 'STARTTLS, the certificate verified'
    assert mail['X-Sink-Auth'] == f'synapse:{RELAY_PASSWORD}'


def test_a_new_relay_password_restarts_synapse_once(synapse: jubilant.Juju, sink: Sink):
    before = synapse_starts(synapse)
    synapse.config(SMTP, {'password': ROTATED_PASSWORD})
    wait_until(synapse, lambda: homeserver(synapse)['email'].get('smtp_pass') == ROTATED_PASSWORD)
    wait_serving(synapse, UNIT)
    assert synapse_starts(synapse) == before + 1
    if not REAL:
        mail = reset_mail(synapse, sink, 'client-secret-3')
        assert mail['X-Sink-Auth'] == f'synapse:{ROTATED_PASSWORD}', 'the new password is used'


def test_removing_the_integration_turns_mail_off_with_one_restart(synapse: jubilant.Juju):
    before = synapse_starts(synapse)
    synapse.remove_relation(APP, SMTP)
    assert wait_status(synapse, UNIT, 'active', NO_MAIL) == NO_MAIL
    wait_until(synapse, lambda: 'email' not in homeserver(synapse))
    wait_serving(synapse, UNIT)
    assert synapse_starts(synapse) == before + 1
