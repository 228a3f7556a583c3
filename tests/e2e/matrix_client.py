#!/usr/bin/env python3
"""A Matrix client for the end-to-end tests, built on matrix-nio (not written here).

Usage (prints one JSON object):
  matrix_client.py register URL SECRET USER PASSWORD   shared-secret registration
  matrix_client.py chat URL USER PASSWORD MESSAGE       login, create a room, send, read back
  matrix_client.py read URL USER PASSWORD ROOM_ID       login and read the room's messages
  matrix_client.py public-rooms URL USER PASSWORD       publish a room and list the directory
  matrix_client.py login URL USER PASSWORD              log in; print the access token (or the error)
  matrix_client.py set-displayname URL USER PASSWORD NAME
  matrix_client.py profile URL USER PASSWORD USER_ID    read a user's profile
  matrix_client.py invite URL USER PASSWORD INVITEES    create a room and invite INVITEES (comma-separated)
  matrix_client.py send URL USER PASSWORD ROOM_ID TEXT  send a message to a room
  matrix_client.py members URL USER PASSWORD ROOM_ID    the room's joined members
"""
import asyncio
import hashlib
import hmac
import json
import sys
import urllib.request

from nio import (AsyncClient, AsyncClientConfig, JoinedMembersResponse, LoginResponse, RoomCreateResponse, RoomMessagesResponse, RoomSendResponse,
                 WhoamiResponse)
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
    elif cmd == "public-rooms":
        out = asyncio.run(public_rooms(*argv[2:5]))
    elif cmd == "login":
        out = asyncio.run(try_login(*argv[2:5]))
    elif cmd == "set-displayname":
        out = asyncio.run(set_displayname(*argv[2:6]))
    elif cmd == "profile":
        out = asyncio.run(profile(*argv[2:6]))
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
