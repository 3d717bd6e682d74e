#!/usr/bin/python3
"""An SMTP receiver for the email sink's tests (Debian's python3-aiosmtpd).

Listens on 127.0.0.1 on a free port and prints "port N" once it does. Each accepted mail is
written to MAILDIR/<n>.eml: "X-Envelope-To:" lines with the accepted recipients, then the mail.
  --tls CERT KEY   offer STARTTLS with that certificate, and refuse mail before it (530)
  --refuse ADDR    answer RCPT TO of ADDR with 550 (the other recipients still get the mail)
  --busy N         answer the first N DATA with 451 (the sender must try again)
"""
import argparse
import asyncio
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, maildir, refuse, busy):
        self.maildir, self.refuse, self.busy, self.n = maildir, set(refuse), busy, 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.busy > 0:
            self.busy -= 1
            return "451 4.3.0 try again later"
        self.n += 1
        path = os.path.join(self.maildir, "%d.eml" % self.n)
        with open(path + ".part", "wb") as f:
            for rcpt in envelope.rcpt_tos:
                f.write(("X-Envelope-To: %s\r\n" % rcpt).encode())
            f.write(envelope.original_content)
        os.rename(path + ".part", path)
        return "250 2.0.0 accepted"


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("maildir")
    p.add_argument("--tls", nargs=2)
    p.add_argument("--refuse", action="append", default=[])
    p.add_argument("--busy", type=int, default=0)
    a = p.parse_args()
    handler = Handler(a.maildir, a.refuse, a.busy)
    ctx = None
    if a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="rx.test", tls_context=ctx,
                     require_starttls=ctx is not None),
        "127.0.0.1", 0)
    print("port %d" % server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
