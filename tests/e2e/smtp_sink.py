#!/usr/bin/env python3
"""A real SMTP server for the email tests (aiosmtpd, from the smtp venv): it accepts
every message and writes each one, as received, to a file in MAILDIR, with headers
saying how it came: X-Sink-TLS (yes/no, STARTTLS used) and X-Sink-Auth (the login and
password the client authenticated with, or none). Test use only.

Usage: smtp_sink.py HOST PORT MAILDIR [CERT KEY]
With CERT and KEY it offers STARTTLS, and AUTH (PLAIN, LOGIN) once TLS is on; any
login is accepted and recorded. Prints `ready` once it accepts connections; stops on
SIGTERM or SIGINT.
"""
import pathlib
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, maildir: pathlib.Path):
        self.maildir = maildir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = self.maildir / f'{self.count:04d}.eml'
        tmp = name.with_suffix('.tmp')
        auth = getattr(session, 'auth_data', None)
        login = f'{auth.login.decode()}:{auth.password.decode()}' if isinstance(auth, LoginPassword) else 'none'
        head = (
            f'X-Sink-TLS: {"yes" if session.ssl is not None else "no"}\n'
            f'X-Sink-Auth: {login}\n'
            f'X-Envelope-To: {", ".join(envelope.rcpt_tos)}\n'
        )
        tmp.write_bytes(head.encode() + envelope.original_content)
        tmp.rename(name)
        return '250 Message accepted for delivery'


def accept_any(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True, auth_data=auth_data)


def main(argv):
    host, port, maildir = argv[1], int(argv[2]), pathlib.Path(argv[3])
    maildir.mkdir(parents=True, exist_ok=True)
    options = {}
    if len(argv) > 5:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(argv[4], argv[5])
        options = {'tls_context': context, 'authenticator': accept_any, 'auth_require_tls': True}
    controller = Controller(Sink(maildir), hostname=host, port=port, **options)
    controller.start()
    print('ready', flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == '__main__':
    main(sys.argv)
