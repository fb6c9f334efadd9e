"""The stand-in's control API under ``/_standin/`` (for tests in other processes and the
demo): lists (as the Microsoft Advertising UI would change them), faults, reset, calls,
and a minimal OAuth token endpoint. Every route maps onto a public StandIn method."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from .web import CONTROL_PREFIX, Handler

if TYPE_CHECKING:
    from .server import StandIn


def handle_control(standin: StandIn, handler: Handler, method: str, path: str, body: bytes) -> None:
    """Serve one control request."""
    route = path[len(CONTROL_PREFIX) :].strip("/")
    if route == "oauth/token" and method == "POST":
        oauth_token(standin, handler, body)
        return
    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError:
        handler.send_json(400, {"error": "body is not JSON"})
        return
    try:
        if route == "lists" and method == "GET":
            lists = standin.lists()
            handler.send_json(
                200,
                {
                    "lists": {
                        str(i): {**rec, "members": sorted(rec["members"])}
                        for i, rec in lists.items()
                    }
                },
            )
        elif route == "lists" and method == "POST":
            payload = payload or {}
            list_id = standin.add_list(
                name=payload["name"],
                membership_duration=payload.get("membership_duration", -1),
                members=payload.get("members", ()),
                list_id=payload.get("list_id"),
                description=payload.get("description", ""),
            )
            handler.send_json(200, {"list_id": list_id})
        elif route.startswith("lists/") and method in ("POST", "DELETE"):
            list_id = int(route.split("/", 1)[1])
            if method == "DELETE":
                standin.delete_list(list_id)
            else:
                payload = payload or {}
                standin.edit_list(
                    list_id,
                    name=payload.get("name"),
                    membership_duration=payload.get("membership_duration"),
                )
            handler.send_json(200, {"list_id": list_id})
        elif route == "faults" and method == "GET":
            handler.send_json(200, {"faults": standin.faults()})
        elif route == "faults" and method == "POST":
            items = payload if isinstance(payload, list) else [payload or {}]
            armed = [standin.inject(**item) for item in items]
            handler.send_json(200, {"faults": armed})
        elif route == "faults" and method == "DELETE":
            standin.clear_faults()
            handler.send_json(200, {"faults": []})
        elif route == "reset" and method == "POST":
            standin.reset()
            handler.send_json(200, {"reset": True})
        elif route == "calls" and method == "GET":
            handler.send_json(200, {"calls": standin.calls})
        elif route == "calls" and method == "DELETE":
            standin.clear_calls()
            handler.send_json(200, {"calls": []})
        else:
            handler.send_json(404, {"error": f"no route {method} {CONTROL_PREFIX}{route}"})
    except (KeyError, TypeError, ValueError) as exc:
        handler.send_json(400, {"error": str(exc)})


def oauth_token(standin: StandIn, handler: Handler, body: bytes) -> None:
    """A minimal OAuth token endpoint (refresh_token grant) for tests of token rotation.

    Refresh tokens starting with ``invalid`` get ``invalid_grant``; others get a new access
    token (the configured ``token``) and a new refresh token ``standin-refresh-token-<n>``.
    """
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    standin.oauth_requests.append(form)
    if form.get("grant_type") != "refresh_token" or not form.get("client_id"):
        handler.send_json(400, {"error": "invalid_request", "error_description": "bad form"})
        return
    if form.get("refresh_token", "").startswith("invalid"):
        handler.send_json(
            400,
            {"error": "invalid_grant", "error_description": "The refresh token is invalid."},
        )
        return
    n = next(standin.refresh_counter)
    handler.send_json(
        200,
        {
            "access_token": standin.token or "standin-access-token",
            "refresh_token": f"standin-refresh-token-{n}",
            "expires_in": 3600,
            "token_type": "Bearer",
        },
    )
