#!/usr/bin/env python3
"""A Matrix client for the end-to-end tests, built on matrix-nio (not written here).

Usage (prints one JSON object):
  matrix_client.py register URL SECRET USER PASSWORD   shared-secret registration
  matrix_client.py chat URL USER PASSWORD MESSAGE       login, create a room, send, read back
  matrix_client.py read URL USER PASSWORD ROOM_ID       login and read the room's messages
  matrix_client.py sync-read URL USER PASSWORD ROOM_ID  login and read the room's timeline from a sync
  matrix_client.py public-rooms URL USER PASSWORD       publish a room and list the directory
  matrix_client.py login URL USER PASSWORD              log in; print the access token (or the error)
  matrix_client.py set-displayname URL USER PASSWORD NAME
  matrix_client.py profile URL USER PASSWORD USER_ID    read a user's profile
  matrix_client.py add-email URL ADMIN_TOKEN USER_ID ADDRESS    bind an email (admin API)
  matrix_client.py reset-request URL ADDRESS CLIENT_SECRET      ask for a password-reset mail
  matrix_client.py follow-link URL LINK         open the mail's link (its path and query on
                                                URL) and confirm it as the page's form does
  matrix_client.py reset-password URL SID CLIENT_SECRET NEW_PASSWORD
                                                set a new password with the validated email
  matrix_client.py invite URL USER PASSWORD INVITEES    create a room and invite INVITEES (comma-separated)
  matrix_client.py send URL USER PASSWORD ROOM_ID TEXT  send a message to a room
  matrix_client.py members URL USER PASSWORD ROOM_ID    the room's joined members
"""
import asyncio
import hashlib
import hmac
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from nio import (AsyncClient, AsyncClientConfig, JoinedMembersResponse, LoginResponse, RoomCreateResponse, RoomMessagesResponse, RoomSendResponse,
                 SyncResponse, WhoamiResponse)
from nio.api import RoomVisibility

# Fail instead of silently waiting when Synapse rate-limits us.
CONFIG = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2)


def register(url, secret, user, password):
    # Synapse's shared-secret registration: GET a nonce, POST the HMAC-SHA1 of
    # nonce\0user\0password\0notadmin keyed with the shared secret.
    base = f"{url}/_synapse/admin/v1/register"
    nonce = json.load(urllib.request.urlopen(base, timeout=10))["nonce"]
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, user, password, "notadmin"):
        mac.update(part.encode())
        if part != "notadmin":
            mac.update(b"\x00")
    body = json.dumps({"nonce": nonce, "username": user, "password": password,
                       "admin": False, "mac": mac.hexdigest()}).encode()
    req = urllib.request.Request(base, data=body, headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=30))


async def login(url, user, password):
    """A logged-in client. PASSWORD may be `token:<access token>` to reuse a session:
    Synapse rate-limits logins (a burst of 5 per client address), so the tests log in
    once and pass the token on."""
    client = AsyncClient(url, user, config=CONFIG)
    if password.startswith("token:"):
        client.access_token = password[len("token:"):]
        who = await client.whoami()
        if not isinstance(who, WhoamiResponse):
            await client.close()
            raise SystemExit(f"token rejected: {who}")
        client.user_id = who.user_id
        return client
    resp = await client.login(password)
    if not isinstance(resp, LoginResponse):
        await client.close()
        raise SystemExit(f"login failed: {resp}")
    return client


async def messages(client, room_id):
    resp = await client.room_messages(room_id, start="", limit=50)
    if not isinstance(resp, RoomMessagesResponse):
        raise SystemExit(f"reading messages failed: {resp}")
    return [e.body for e in resp.chunk if hasattr(e, "body")]


async def chat(url, user, password, message):
    client = await login(url, user, password)
    try:
        room = await client.room_create(name="charm test")
        if not isinstance(room, RoomCreateResponse):
            raise SystemExit(f"room creation failed: {room}")
        sent = await client.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": message})
        if not isinstance(sent, RoomSendResponse):
            raise SystemExit(f"sending failed: {sent}")
        return {"room_id": room.room_id, "event_id": sent.event_id, "messages": await messages(client, room.room_id),
                "user_id": client.user_id, "access_token": client.access_token}
    finally:
        await client.close()


async def read(url, user, password, room_id):
    client = await login(url, user, password)
    try:
        return {"messages": await messages(client, room_id)}
    finally:
        await client.close()


async def sync_read(url, user, password, room_id):
    client = await login(url, user, password)
    try:
        # Synapse answers the same initial sync from a cache for a while: a filter of
        # its own (excluding an event type nobody sends) makes each call a new request.
        nonce = hashlib.sha256(str(asyncio.get_running_loop().time()).encode()).hexdigest()[:12]
        sync_filter = {"room": {"timeline": {"limit": 20, "not_types": [f"x.charm.test.{nonce}"]}}}
        resp = await client.sync(timeout=0, full_state=True, sync_filter=sync_filter)
        if not isinstance(resp, SyncResponse):
            raise SystemExit(f"sync failed: {resp}")
        room = resp.rooms.join.get(room_id)
        events = room.timeline.events if room else []
        return {"messages": [e.body for e in events if hasattr(e, "body")]}
    finally:
        await client.close()


async def public_rooms(url, user, password):
    client = await login(url, user, password)
    try:
        # A public room is published in the server's room directory.
        room = await client.room_create(name="public test", visibility=RoomVisibility.public)
        if not isinstance(room, RoomCreateResponse):
            raise SystemExit(f"room creation failed: {room}")
        req = urllib.request.Request(f"{url}/_matrix/client/v3/publicRooms",
                                     headers={"Authorization": f"Bearer {client.access_token}"})
        body = json.load(urllib.request.urlopen(req, timeout=10))
        return {"room_id": room.room_id, "listed": [r["room_id"] for r in body.get("chunk", [])]}
    finally:
        await client.close()


async def try_login(url, user, password):
    client = AsyncClient(url, user, config=CONFIG)
    try:
        # No automatic retries: a refused login must be reported, not retried.
        resp = await client.login(password)
        if isinstance(resp, LoginResponse):
            return {"ok": True, "access_token": resp.access_token, "user_id": resp.user_id}
        return {"ok": False, "error": str(resp.message), "status": resp.status_code}
    finally:
        await client.close()


async def set_displayname(url, user, password, name):
    client = await login(url, user, password)
    try:
        resp = await client.set_displayname(name)
        return {"ok": not hasattr(resp, "status_code") or resp.status_code is None, "response": str(resp)}
    finally:
        await client.close()


async def profile(url, user, password, user_id):
    client = await login(url, user, password)
    try:
        resp = await client.get_profile(user_id)
        return {"displayname": getattr(resp, "displayname", None), "response": type(resp).__name__}
    finally:
        await client.close()


def _json(method, url, body=None, token=None):
    """One JSON request: (HTTP status, decoded body)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def add_email(url, token, user_id, address):
    status, body = _json("PUT", f"{url}/_synapse/admin/v2/users/{urllib.parse.quote(user_id)}",
                         {"threepids": [{"medium": "email", "address": address}]}, token)
    return {"status": status, "threepids": body.get("threepids", body)}


def reset_request(url, address, client_secret):
    status, body = _json("POST", f"{url}/_matrix/client/v3/account/password/email/requestToken",
                         {"client_secret": client_secret, "email": address, "send_attempt": 1})
    return {"status": status, **body}


def follow_link(url, link):
    """GET the link (Synapse shows a confirmation page), then POST it as the page's form
    does; returns both statuses and the final page's text."""
    parts = urllib.parse.urlsplit(link)
    target = f"{url}{parts.path}?{parts.query}"
    with urllib.request.urlopen(target, timeout=30) as resp:
        page = resp.read().decode()
        shown = resp.status
    form = urllib.parse.urlencode(dict(urllib.parse.parse_qsl(parts.query))).encode()
    req = urllib.request.Request(target, data=form, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return {"get": shown, "post": resp.status, "page": resp.read().decode(),
                    "confirm_page": page}
    except urllib.error.HTTPError as e:
        return {"get": shown, "post": e.code, "page": e.read().decode(), "confirm_page": page}


def reset_password(url, sid, client_secret, new_password):
    creds = {"sid": sid, "client_secret": client_secret}
    status, body = _json("POST", f"{url}/_matrix/client/v3/account/password",
                         {"new_password": new_password, "logout_devices": False,
                          "auth": {"type": "m.login.email.identity", "threepid_creds": creds,
                                   "threepidCreds": creds}})
    return {"status": status, **body}


async def invite(url, user, password, invitee):
    client = await login(url, user, password)
    try:
        room = await client.room_create(name="bridge test", invite=invitee.split(","))
        if not isinstance(room, RoomCreateResponse):
            raise SystemExit(f"room creation failed: {room}")
        return {"room_id": room.room_id, "user_id": client.user_id, "access_token": client.access_token}
    finally:
        await client.close()


async def send(url, user, password, room_id, message):
    client = await login(url, user, password)
    try:
        sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": message})
        if not isinstance(sent, RoomSendResponse):
            raise SystemExit(f"sending failed: {sent}")
        return {"event_id": sent.event_id}
    finally:
        await client.close()


async def members(url, user, password, room_id):
    client = await login(url, user, password)
    try:
        resp = await client.joined_members(room_id)
        if not isinstance(resp, JoinedMembersResponse):
            raise SystemExit(f"reading members failed: {resp}")
        return {"members": sorted(m.user_id for m in resp.members)}
    finally:
        await client.close()


def main(argv):
    cmd = argv[1]
    if cmd == "register":
        out = register(*argv[2:6])
    elif cmd == "chat":
        out = asyncio.run(chat(*argv[2:6]))
    elif cmd == "read":
        out = asyncio.run(read(*argv[2:6]))
    elif cmd == "sync-read":
        out = asyncio.run(sync_read(*argv[2:6]))
    elif cmd == "public-rooms":
        out = asyncio.run(public_rooms(*argv[2:5]))
    elif cmd == "login":
        out = asyncio.run(try_login(*argv[2:5]))
    elif cmd == "set-displayname":
        out = asyncio.run(set_displayname(*argv[2:6]))
    elif cmd == "profile":
        out = asyncio.run(profile(*argv[2:6]))
    elif cmd == "add-email":
        out = add_email(*argv[2:6])
    elif cmd == "reset-request":
        out = reset_request(*argv[2:5])
    elif cmd == "follow-link":
        out = follow_link(*argv[2:4])
    elif cmd == "reset-password":
        out = reset_password(*argv[2:6])
    elif cmd == "invite":
        out = asyncio.run(invite(*argv[2:6]))
    elif cmd == "send":
        out = asyncio.run(send(*argv[2:7]))
    elif cmd == "members":
        out = asyncio.run(members(*argv[2:6]))
    else:
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
