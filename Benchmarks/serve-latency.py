#!/usr/bin/env python3
"""Latency from a webhook's 202 to its effect in GET /v1/roas, against a running `roas serve`.

    python3 Benchmarks/serve-latency.py http://127.0.0.1:8080 --secret whsec_... [--samples 200]

Each sample POSTs one signed batch holding a spend event of a new creator, stamped at the current
watermark plus --ahead-ms (6 s: the lateness plus 1 s, so it is not late while another sender
loads the server at up to a few hundred seconds of event time per second), then polls /v1/roas?creator=... every 2 ms until the creator's
open row appears. The live board is refreshed every second by default (`--emit-every` sets it), so
that cadence dominates. Prints p50, p90, p99 and max in milliseconds, as one JSON line.
"""
import argparse, base64, hashlib, hmac, json, statistics, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("base")
parser.add_argument("--secret", required=True)
parser.add_argument("--samples", type=int, default=200)
parser.add_argument("--start-ms", type=int, default=1_795_219_200_000, help="event time while no watermark exists")
parser.add_argument("--token")
parser.add_argument("--ahead-ms", type=int, default=6000,
                    help="event time of a probe past the watermark; under load it must exceed how far event time moves in a round trip, and it makes load events up to that much older late")
arguments = parser.parse_args()
key = base64.b64decode(arguments.secret.removeprefix("whsec_") + "==")
run = int(time.time())
latencies = []
headers = {"Authorization": f"Bearer {arguments.token}"} if arguments.token else {}


def watermark_ms():
    with urllib.request.urlopen(urllib.request.Request(f"{arguments.base}/v1/roas?limit=0", headers=headers)) as reply:
        text = json.load(reply)["watermark"]
    if text is None:
        return None
    from datetime import datetime
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


for index in range(arguments.samples):
    creator = f"lat-{run}-{index}"
    watermark = watermark_ms()
    ts = arguments.start_ms + index * 1000 if watermark is None else watermark + arguments.ahead_ms
    body = json.dumps({"type": "spend", "id": f"{creator}-s", "ts": ts,
                       "creator": creator, "amount": 1}).encode() + b"\n"
    identifier, stamp = f"{creator}-b", str(int(time.time()))
    signature = base64.b64encode(hmac.new(key, f"{identifier}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    request = urllib.request.Request(arguments.base + "/v1/events", data=body, headers={
        "webhook-id": identifier, "webhook-timestamp": stamp, "webhook-signature": "v1," + signature})
    with urllib.request.urlopen(request) as reply:
        assert reply.status == 202, reply.status
        if json.load(reply)["accepted"] != 1:
            print(f"probe {index} was dead-lettered (late?); skipped")
            continue
    accepted = time.perf_counter()
    while True:
        with urllib.request.urlopen(urllib.request.Request(
                f"{arguments.base}/v1/roas?creator={creator}", headers=headers)) as reply:
            if json.load(reply)["rows"]:
                break
        time.sleep(0.002)
    latencies.append((time.perf_counter() - accepted) * 1000)
latencies.sort()
def percentile(p):
    return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 1)
print(json.dumps({"samples": len(latencies), "p50_ms": percentile(50), "p90_ms": percentile(90),
                  "p99_ms": percentile(99), "max_ms": round(latencies[-1], 1),
                  "mean_ms": round(statistics.mean(latencies), 1)}))
