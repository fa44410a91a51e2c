"""A minimal WebSocket client (RFC 6455) over a plain socket, for tests.

Python's standard library has none. Text and close frames, client masking,
fragmented messages, and automatic pong replies to pings.
"""

import base64
import json
import os
import socket
import struct


class HandshakeError(Exception):
    def __init__(self, status, body):
        super().__init__(f"handshake refused: HTTP {status}: {body}")
        self.status = status
        self.body = body


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class WsClient:
    def __init__(self, port, path, timeout=10.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Set before connect so the TCP window starts small: a slow reader.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.closed = None
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(req.encode())
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if status != 101:
            headers = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
            n = int(headers.get("Content-Length", headers.get("content-length", "0")))
            body = self._read_exact(n).decode() if n else ""
            self.sock.close()
            raise HandshakeError(status, body)

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed during handshake")
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("connection closed mid-frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_text(self, text):
        self._send_frame(0x1, text.encode())

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_binary(self, data):
        self._send_frame(0x2, data)

    def recv_message(self):
        """The next text message (str). Raises Closed on a close frame."""
        parts = []
        while True:
            b0, b1 = self._read_exact(2)
            opcode = b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read_exact(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read_exact(8))
            payload = self._read_exact(n)
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                reason = payload[2:].decode(errors="replace")
                if self.closed is None:
                    self.closed = (code, reason)
                    try:
                        self._send_frame(0x8, payload[:2])
                    except OSError:
                        pass
                raise Closed(code, reason)
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts).decode()

    def recv_json(self):
        return json.loads(self.recv_message())

    def close(self, code=1000):
        try:
            if self.closed is None:
                self._send_frame(0x8, struct.pack("!H", code))
                self.closed = (code, "")
                # Wait for the server's close frame.
                while True:
                    self.recv_message()
        except (Closed, OSError, ConnectionError):
            pass
        finally:
            self.sock.close()
