"""Edges found in review (issue 16): a WhatsApp media lookup answered by something that is
not the Graph API (a proxy's or captive portal's HTML page with a 200) must cost the file,
never the message (the README: "the message is never lost for its file")."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from channels.meta import graph
from channels.meta.media import with_media
from channels.meta.payload import Incoming, MediaRef
from channels.standin_http import LoopbackServer
from config.meta import MetaConfig
from kartabl.messages import InboundMessage
from kartabl.models import Channel


class _NotGraph(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b"<html><body>Access denied</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def not_graph() -> Iterator[str]:
    server = LoopbackServer("not-graph")
    server.serve(_NotGraph)
    yield server.origin
    server.stop()


def test_a_media_lookup_that_is_not_json_lists_the_file_and_keeps_the_message(
        not_graph: str, tmp_path: Path) -> None:
    config = MetaConfig(app_secret="a" * 32, verify_token="v" * 16, graph_url=not_graph,
                        whatsapp=[{"phone_number_id": "1", "access_token": "tok"}])
    msg = InboundMessage(channel=Channel.WHATSAPP, external_id="wamid.X", sender="+989121234567",
                         text="")
    incoming = Incoming(msg, (MediaRef("image", "image/jpeg", media_id="555", token="tok"),))
    with graph.client(config) as http:
        out = with_media(incoming, http, config, tmp_path, 1_000_000)
    assert [a.storage_key for a in out.attachments] == [None]
    assert out.meta["media_errors"] and "tok" not in str(out.meta["media_errors"])
