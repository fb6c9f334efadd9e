"""The stand-in's HTTP layer: the paths it serves, the threaded server and the request
handler that routes each request to the StandIn (SOAP, file upload, file download, control)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .server import StandIn

log = logging.getLogger("sync.standin")

SERVICE_PATH = "/Api/Advertiser/CampaignManagement/v13/BulkService.svc"
UPLOAD_PREFIX = "/_bulk/upload/"
FILE_PREFIX = "/_bulk/files/"
CONTROL_PREFIX = "/_standin/"


def multipart_file(content_type: str, body: bytes) -> bytes | None:
    """The content of the ``file`` part of a multipart/form-data body."""
    if "multipart/form-data" not in content_type or "boundary=" not in content_type:
        return None
    boundary = content_type.split("boundary=", 1)[1].split(";", 1)[0].strip().strip('"')
    delimiter = b"--" + boundary.encode()
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        disposition = head.decode("latin-1").lower()
        if 'name="file"' in disposition:
            return content[:-2] if content.endswith(b"\r\n") else content
    return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: StandIn

    def handle_error(self, request, client_address) -> None:
        log.debug("connection error from a client", exc_info=True)


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "BingBulkStandIn/1.0"
    protocol_version = "HTTP/1.0"

    # -- plumbing ----------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        # Paths carry request ids and file tokens only; never hashes.
        log.info("%s %s", self.address_string(), format % args)

    def origin(self, standin: StandIn) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else standin.base_url

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away before the reply was sent")

    def send_xml(self, status: int, body: bytes) -> None:
        self.send(status, body, "text/xml; charset=utf-8")

    def send_json(self, status: int, data: Any) -> None:
        self.send(status, json.dumps(data).encode(), "application/json")

    def reset_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.close()

    # -- verbs -------------------------------------------------------------------------------

    def _route(self, method: str) -> None:
        standin = self.server.standin
        path = urlsplit(self.path).path
        body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
        if path.startswith(CONTROL_PREFIX):
            standin.handle_control(self, method, path, body)
            return
        with standin.serving():
            if method == "POST" and path.startswith(UPLOAD_PREFIX):
                standin.handle_upload(self, path[len(UPLOAD_PREFIX) :], body)
            elif method == "GET" and path.startswith(FILE_PREFIX):
                standin.handle_file(self, path[len(FILE_PREFIX) :])
            elif method == "POST" and path.rstrip("/").lower() == SERVICE_PATH.lower():
                standin.handle_soap(self, body)
            else:
                self.send(404, b"Not found", "text/plain")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")
