#!/usr/bin/env python3
"""An at-least-once TCP sender for `roas serve --data-dir`: it sends the signed batch frames of a
file (as `roas gen --secret` writes them) and resends every batch the server did not acknowledge.

The server answers each frame with one line (schemas/ack.schema.json): {"ack": ID} once the batch is
durable and applied (or {"ack": ID, "duplicate": true} for a resend of one), {"nack": ID, "reason":
...} otherwise. A `not_durable` nack, a closed connection or a refused connect (the server was
killed and is restarting) make the sender reconnect and resend, in file order, every batch not yet
acknowledged. Other nacks (a bad signature, say) are final: counted and not resent.

Usage: durable_sender.py --port PORT --input FILE [--host 127.0.0.1] [--window 64] [--rate BATCHES_PER_S]
                         [--deadline 300]
Prints one JSON summary line on stdout; exit status 0 when every batch was acknowledged.
"""
import argparse
import json
import socket
import sys
import time


def read_frames(path):
    """The batch frames of the file, in order: (id, bytes of header line + payload)."""
    with open(path, "rb") as handle:
        data = handle.read()
    frames = []
    position = 0
    while position < len(data):
        end = data.index(b"\n", position)
        line = data[position:end]
        header = json.loads(line)["batch"]
        payload_end = end + 1 + header["bytes"]
        frames.append((header["id"], data[position:payload_end]))
        position = payload_end
    return frames


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--window", type=int, default=64, help="batches sent and not yet answered")
    parser.add_argument("--deadline", type=float, default=300, help="seconds before giving up")
    parser.add_argument("--rate", type=float, default=0, help="batches per second at most (0: as fast as acknowledged)")
    options = parser.parse_args()

    frames = read_frames(options.input)
    index_of = {batch_id: index for index, (batch_id, _) in enumerate(frames)}
    done = [False] * len(frames)
    counts = {"acks": 0, "duplicates": 0, "nacks": {}, "connections": 0, "refused_connects": 0, "resent": 0}
    sent_ever = [False] * len(frames)
    deadline = time.monotonic() + options.deadline
    remaining = len(frames)
    started = time.monotonic()
    sends = 0

    while remaining > 0:
        if time.monotonic() > deadline:
            break
        try:
            connection = socket.create_connection((options.host, options.port), timeout=5)
        except OSError:
            counts["refused_connects"] += 1
            time.sleep(0.05)
            continue
        counts["connections"] += 1
        connection.settimeout(10)
        reader = connection.makefile("rb")
        pending = [index for index in range(len(frames)) if not done[index]]
        in_flight = []
        next_position = 0
        try:
            while (next_position < len(pending) or in_flight) and time.monotonic() < deadline:
                while next_position < len(pending) and len(in_flight) < options.window:
                    index = pending[next_position]
                    next_position += 1
                    if sent_ever[index]:
                        counts["resent"] += 1
                    sent_ever[index] = True
                    if options.rate > 0:
                        pause = started + sends / options.rate - time.monotonic()
                        if pause > 0:
                            time.sleep(pause)
                    sends += 1
                    connection.sendall(frames[index][1])
                    in_flight.append(index)
                line = reader.readline()
                if not line:
                    raise ConnectionError("the server closed the connection")
                answer = json.loads(line)
                batch_id = answer.get("ack", answer.get("nack"))
                index = index_of.get(batch_id)
                if index is None:
                    raise ConnectionError(f"an answer for an unknown batch: {line!r}")
                if index in in_flight:
                    in_flight.remove(index)
                if "ack" in answer:
                    if not done[index]:
                        done[index] = True
                        remaining -= 1
                    counts["acks"] += 1
                    if answer.get("duplicate"):
                        counts["duplicates"] += 1
                else:
                    reason = answer.get("reason", "?")
                    counts["nacks"][reason] = counts["nacks"].get(reason, 0) + 1
                    if reason == "not_durable":
                        # Back off, then resend everything unacknowledged on a new connection.
                        time.sleep(0.2)
                        raise ConnectionError("not durable")
                    if not done[index]:
                        done[index] = True
                        remaining -= 1
        except (OSError, ConnectionError, ValueError):
            time.sleep(0.05)
        finally:
            try:
                connection.close()
            except OSError:
                pass

    summary = {"batches": len(frames), "acknowledged": len(frames) - remaining, **counts}
    print(json.dumps(summary))
    sys.exit(0 if remaining == 0 else 1)


if __name__ == "__main__":
    main()
