#!/usr/bin/python3
"""A small HTTP server for tests/cli/download.sh, on 127.0.0.1 only (python3's standard library,
no packages): serves ROOT with HTTP Range support and injected faults.

    http_test_server.py ROOT PORT_FILE LOG_FILE [--lifetime SECONDS]

Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, logs "METHOD PATH RANGE" per
request to LOG_FILE, and exits by itself after --lifetime seconds (default 300).
Paths:
    /NAME              the file, 200, or 206 for "Range: bytes=N-" (416 when N >= size)
    /cut/NAME          the first request for NAME announces the whole length but sends only half
                       of it, then closes the connection; later requests behave like /NAME
    /norange/NAME      ignores Range (always 200 with the whole file)
    anything else      404
"""
import http.server
import os
import sys
import threading

ROOT, PORT_FILE, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
LIFETIME = float(sys.argv[sys.argv.index("--lifetime") + 1]) if "--lifetime" in sys.argv else 300.0
cut_done = set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def serve(self, head):
        rng = self.headers.get("Range", "-")
        with lock, open(LOG, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, rng))
        mode, name = "plain", self.path.lstrip("/")
        for m in ("cut", "norange"):
            if name.startswith(m + "/"):
                mode, name = m, name[len(m) + 1:]
        path = os.path.join(ROOT, name)
        if "/" in name or ".." in name or not os.path.isfile(path):
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        data = open(path, "rb").read()
        start = 0
        if rng.startswith("bytes=") and mode != "norange":
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if head:
            return
        with lock:
            cut = mode == "cut" and name not in cut_done
            if cut:
                cut_done.add(name)
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def do_GET(self):
        self.serve(False)

    def do_HEAD(self):
        self.serve(True)


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that hangs up (the cut tests) is expected


srv = Server(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
threading.Timer(LIFETIME, srv.shutdown).start()
srv.serve_forever()
