#!/usr/bin/env python3
"""Sends a file (a framed stream, as `roas gen --secret` writes it) to `roas serve --listen-tcp` as
fast as the socket takes it, reads the server's answer lines meanwhile, half-closes, and waits for
the server to close the connection (everything read has then been applied; with --data-dir, every
batch has been answered). A thin load generator for Benchmarks/durability.sh: unlike `roas gen
--tcp` it spends no CPU making events, so the server has the machine.

Usage: tcp_send.py --port PORT --input FILE [--host 127.0.0.1] [--repeat 1]
Prints one JSON line: seconds, bytes sent, and the answer lines by kind (acks, duplicates, nacks);
SIGTERM or SIGINT stops it early and it still prints the line ("interrupted": true).
"""
import argparse
import json
import signal
import socket
import threading
import time


def stop(_signal, _frame):
    raise KeyboardInterrupt


def main():
    # SIGTERM stops it early (a shell starts background jobs with SIGINT ignored).
    signal.signal(signal.SIGTERM, stop)
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--repeat", type=int, default=1, help="send the file this many times")
    arguments = parser.parse_args()

    with open(arguments.input, "rb") as handle:
        data = handle.read()
    counts = {"acks": 0, "duplicates": 0, "nacks": 0, "other": 0}

    def read_answers(connection):
        pending = b""
        while True:
            chunk = connection.recv(1 << 20)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.startswith(b'{"ack"'):
                    counts["duplicates" if b'"duplicate":true' in line else "acks"] += 1
                elif line.startswith(b'{"nack"'):
                    counts["nacks"] += 1
                elif line:
                    counts["other"] += 1

    started = time.monotonic()
    connection = socket.create_connection((arguments.host, arguments.port))
    reader = threading.Thread(target=read_answers, args=(connection,), daemon=True)
    reader.start()
    view = memoryview(data)
    sent = 0
    interrupted = False
    try:
        for _ in range(arguments.repeat):
            for offset in range(0, len(data), 1 << 20):
                connection.sendall(view[offset:offset + (1 << 20)])
                sent += min(1 << 20, len(data) - offset)
        connection.shutdown(socket.SHUT_WR)
        reader.join()
    except KeyboardInterrupt:
        # Stopped by SIGINT or SIGTERM (Benchmarks/durability.sh's overload): report what was answered so far.
        interrupted = True
    connection.close()
    seconds = time.monotonic() - started
    print(json.dumps({"seconds": round(seconds, 3), "bytes": sent, "interrupted": interrupted, **counts}), flush=True)


if __name__ == "__main__":
    main()
