"""JujuLocal's matrix-appservice stand-in: the parts a bridge charm does in Python.

  python matrix_appservice.py encrypt     stdin: {"key", "plaintext", "mode"}; prints the token
  python matrix_appservice.py serve FILE  runs the appservice FILE (JSON) describes

`encrypt` does what the matrix_auth library's requirer does: Fernet from `cryptography`
with the key Synapse shared (`mode` "fernet"); "wrong-key" encrypts with a fresh key
instead (a registration Synapse cannot decrypt).

`serve` is a real appservice built on mautrix: it listens at the registration's URL for
Synapse's transactions, records every event pushed to it, joins the rooms its puppet
user is invited to, and registers that puppet (in its user namespace) through Synapse
with its as_token once Synapse accepts the token. `GET /_standin/status` shows what it
did; `GET /_standin/whoami` asks Synapse who its as_token is, now.
"""

import asyncio
import json
import logging
import os
import sys

import aiohttp
from aiohttp import web


def encrypt() -> None:
    from cryptography.fernet import Fernet

    req = json.load(sys.stdin)
    key = req["key"].encode() if req.get("mode", "fernet") == "fernet" else Fernet.generate_key()
    print(Fernet(key).encrypt(req["plaintext"].encode()).decode())


async def serve(path: str) -> None:
    from mautrix.appservice import AppService
    from mautrix.appservice.state_store.file import FileASStateStore

    with open(path) as f:
        conf = json.load(f)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("standin")
    state = {"domain": None, "registered": [], "joined": [], "received": [], "errors": []}
    store_path = os.path.join(conf["state_dir"], "mx-state.json")
    if os.path.exists(store_path):
        os.remove(store_path)

    async def whoami() -> tuple[int, dict]:
        url = conf["homeserver"].rstrip("/") + "/_matrix/client/v3/account/whoami"
        headers = {"Authorization": f"Bearer {conf['as_token']}"}
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as r:
                    return r.status, await r.json(content_type=None)
        except Exception as e:  # an unreachable homeserver is an answer too
            return 0, {"error": str(e)}

    appserv = AppService(
        server=conf["homeserver"].rstrip("/"),
        # The domain is not in the relation: Synapse says it (below), once it knows
        # our token. Only the puppet's ID needs it.
        domain="pending",
        as_token=conf["as_token"],
        hs_token=conf["hs_token"],
        bot_localpart=conf["sender"],
        id=conf["id"],
        state_store=FileASStateStore(path=store_path, binary=False),
        log=log,
    )
    ours = f"@{conf['puppet']}:"
    # mautrix skips a transaction id it has seen. Synapse on SQLite numbers its
    # transactions from 1 again after a restart (the next id follows the highest still
    # stored, and sent ones are deleted), so a bridge that outlives a Synapse restart
    # would skip new events: the stand-in remembers a transaction only with its body.
    seen = set()

    class Seen(set):
        def __contains__(self, txn_id):
            return False

        def add(self, txn_id):
            pass

    appserv.transactions = Seen()

    @web.middleware
    async def dedup(request, handler):
        if request.method == "PUT" and "/transactions/" in request.path:
            key = (request.match_info.get("transaction_id"), await request.read())
            if key in seen:
                return web.json_response({})
            response = await handler(request)
            if response.status == 200:
                seen.add(key)
            return response
        return await handler(request)

    appserv.app.middlewares.append(dedup)

    @appserv.matrix_event_handler
    async def on_event(evt) -> None:
        content = evt.serialize().get("content", {})
        target = getattr(evt, "state_key", None)
        state["received"].append(
            {
                "type": str(evt.type),
                "sender": str(evt.sender),
                "room_id": str(evt.room_id),
                "body": content.get("body"),
                "membership": content.get("membership"),
                "state_key": target,
            }
        )
        if content.get("membership") == "invite" and str(target or "").startswith(ours):
            try:
                await appserv.intent.user(target).join_room(evt.room_id)
                state["joined"].append(str(evt.room_id))
            except Exception as e:
                state["errors"].append(f"join {evt.room_id}: {e}")

    async def status(_: web.Request) -> web.Response:
        return web.json_response(state)

    async def who(_: web.Request) -> web.Response:
        code, body = await whoami()
        return web.json_response({"status": code, "body": body})

    appserv.app.router.add_get("/_standin/status", status)
    appserv.app.router.add_get("/_standin/whoami", who)
    # Listening first: Synapse may push as soon as it loads the registration.
    await appserv.start(host=conf["host"], port=conf["port"])
    log.info("appservice %s listening on %s:%s", conf["id"], conf["host"], conf["port"])
    while True:
        code, body = await whoami()
        if code == 200:
            state["domain"] = body["user_id"].split(":", 1)[1]
            break
        log.info("waiting for Synapse to accept the as_token: %s %s", code, body)
        await asyncio.sleep(1)
    puppet = f"{ours}{state['domain']}"
    try:
        await appserv.intent.user(puppet).ensure_registered()
        state["registered"].append(puppet)
        log.info("registered %s", puppet)
    except Exception as e:
        state["errors"].append(f"register {puppet}: {e}")
    await asyncio.Event().wait()


if __name__ == "__main__":
    if sys.argv[1] == "encrypt":
        encrypt()
    elif sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2]))
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")
