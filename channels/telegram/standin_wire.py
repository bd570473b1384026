"""What the Bot API stand-in (:mod:`channels.telegram.standin`) reads and writes on the
wire: its JSON answers (``ok``/``error`` bodies), the answers of the faults a test queues
(:class:`Fault`, :func:`fault_answer`), the request bodies it parses (form-encoded, JSON,
or ``multipart/form-data`` with uploaded files: :class:`UploadedFile`),
and :func:`text_update`, the update a customer's message arrives as.
"""

from __future__ import annotations

import email.policy
import json
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

Answer = tuple[int, dict[str, Any] | str]  # a status and a JSON body, or an HTML page


@dataclass(slots=True)
class Fault:
    # retry_after | blocked | chat_not_found | server_error | proxy_error | status | slow | drop
    kind: str
    value: float = 0  # retry_after: seconds; *_error, status: the status; slow: seconds
    after_send: bool = False  # recorded first, then the fault answers


def ok(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def error(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


def list_param(params: dict[str, Any], name: str) -> list[str] | None:
    """A list parameter: a JSON array in a form field, or a list in a JSON body."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list):
        raise ValueError(f"{name} is not a list")
    return [str(v) for v in value]


_PROXY_PAGE = ("<html><head><title>{code} Bad Gateway</title></head><body><center><h1>{code} "
               "Bad Gateway</h1></center><hr><center>nginx</center></body></html>")


def fault_answer(fault: Fault) -> Answer:
    if fault.kind == "retry_after":
        n = int(fault.value) or 1
        return 429, error(429, f"Too Many Requests: retry after {n}", retry_after=n)
    if fault.kind == "blocked":
        return 403, error(403, "Forbidden: bot was blocked by the user")
    if fault.kind == "chat_not_found":
        return 400, error(400, "Bad Request: chat not found")
    if fault.kind == "server_error":
        code = int(fault.value) or 500
        phrase = "Bad Gateway" if code == 502 else "Internal Server Error"
        return code, error(code, phrase)
    if fault.kind == "proxy_error":
        code = int(fault.value) or 502
        return code, _PROXY_PAGE.format(code=code)
    if fault.kind == "status":
        code = int(fault.value) or 429
        return code, error(code, f"Error {code}")
    raise ValueError(f"unknown fault {fault.kind!r}")



@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file a client uploaded (``multipart/form-data``), as the Bot API receives it."""

    filename: str
    content_type: str
    data: bytes


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """``multipart/form-data`` (RFC 7578, what the Bot API takes for uploads): a part with
    a filename is an :class:`UploadedFile`, any other part a string field."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    mail = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not mail.is_multipart():
        raise ValueError("not a multipart body")
    params: dict[str, Any] = {}
    for part in mail.iter_parts():
        if not isinstance(part, EmailMessage):
            raise ValueError("bad part")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise ValueError("a part without a name")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            params[name] = UploadedFile(filename, part.get_content_type(), data)
        else:
            params[name] = data.decode(part.get_content_charset() or "utf-8")
    return params


def parse_params(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("multipart/form-data"):
        return _multipart(content_type, body)
    if content_type.startswith("application/json"):
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))



def text_update(user_id: int, text: str, *, first_name: str = "Sara", last_name: str = "",
                username: str = "", chat_type: str = "private", message_id: int = 1,
                **message: Any) -> dict[str, Any]:
    """An update carrying a message from ``user_id`` (without ``update_id``: the stand-in
    or the caller adds it)."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    chat_id = user_id if chat_type == "private" else -100_000 - user_id
    msg: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                           "chat": {"id": chat_id, "type": chat_type}, "from": user}
    if text:
        msg["text"] = text
    msg.update(message)
    return {"message": msg}


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's width and height (its IHDR); 1 x 1 for anything else (Telegram would
    recompress the photo and report its own sizes: a test does not read them)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 1, 1
