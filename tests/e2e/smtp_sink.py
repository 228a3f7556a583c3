#!/usr/bin/env python3
"""A real SMTP server for the email tests (aiosmtpd, from the smtp venv): it accepts
every message and writes each one, as received, to a file in MAILDIR.

Usage: smtp_sink.py HOST PORT MAILDIR
Prints `ready` once it accepts connections; stops on SIGTERM or SIGINT.
"""
import pathlib
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, maildir: pathlib.Path):
        self.maildir = maildir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = self.maildir / f'{self.count:04d}.eml'
        tmp = name.with_suffix('.tmp')
        head = f'X-Envelope-From: {envelope.mail_from}\nX-Envelope-To: {", ".join(envelope.rcpt_tos)}\n'
        tmp.write_bytes(head.encode() + envelope.original_content)
        tmp.rename(name)
        return '250 Message accepted for delivery'


def main(argv):
    host, port, maildir = argv[1], int(argv[2]), pathlib.Path(argv[3])
    maildir.mkdir(parents=True, exist_ok=True)
    controller = Controller(Sink(maildir), hostname=host, port=port)
    controller.start()
    print('ready', flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == '__main__':
    main(sys.argv)
