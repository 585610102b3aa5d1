#!/usr/bin/env python3
"""testbed/aux.py — the small local services kwok points pods at.

* A TCP echo server on 127.0.0.1:PORT: every pod port reached with `kubectl port-forward` lands here
  (ClusterPortForward), so a test can send bytes and expect them back. A connection whose first bytes
  look like an HTTP request gets a minimal HTTP response instead, so `curl` through a port-forward works.
* A log ticker appending one line per second to LOGFILE in the CRI log format
  ("<RFC3339Nano> stdout|stderr F <text>"), which kwok's ClusterLogs/ClusterAttach read: `kubectl logs -f`
  and `kubectl attach` then show a live stream.

Standard library only; bound to 127.0.0.1 only.
"""
import datetime
import socket
import socketserver
import sys
import threading
import time

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        first = conn.recv(65536)
        if not first:
            return
        if first.startswith(HTTP_METHODS):
            line = first.split(b"\r\n", 1)[0]
            body = b"custos testbed echo: " + line + b"\n"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            return
        conn.sendall(first)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def ticker(path):
    n = 0
    while True:
        n += 1
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        stream = "stderr" if n % 10 == 0 else "stdout"
        with open(path, "a") as f:
            f.write(f"{now} {stream} F testbed tick {n}\n")
        time.sleep(1)


def main():
    port, logfile = int(sys.argv[1]), sys.argv[2]
    threading.Thread(target=ticker, args=(logfile,), daemon=True).start()
    with Server(("127.0.0.1", port), Echo) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
