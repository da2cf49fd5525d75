#!/usr/bin/env python3
"""A plain Standard Webhooks sender: POSTs the batches of a signed roas stream to `roas serve`.

    python3 scripts/webhook_sender.py URL --secret whsec_... --input FILE
                                           [--only I[,J...]] [--tamper N] [--header-timestamp]
                                           [--retries N] [--timeout SECONDS] [--print-responses]

FILE is a stream made by `roas gen --secret ...` (or `roas sample`): signed batch frames, each a
header line {"batch":{"id":...,"timestamp":...,"signature":...,"bytes":N}} followed by N payload
bytes. For each batch, in order, the payload is POSTed to URL (e.g. http://127.0.0.1:8080/v1/events)
with the headers a Standard Webhooks sender makes with the reference package `standardwebhooks`:
webhook-id (the batch id), webhook-timestamp (now, in seconds; with --header-timestamp the batch's
own timestamp) and webhook-signature = Webhook(secret).sign(id, timestamp, payload). The signature
in the frame header is not sent; it is only compared with the one the package makes for the same
id and timestamp (`signatures_matching_header` in the summary), a cross-check of `roas gen`.

  --only I,J     send only these batches (1-based, in the given order; repeatable)
  --tamper N     after signing, flip one byte of every Nth sent payload (the server must answer 401)
  --retries N    retry a 503 answer up to N times after its Retry-After (default 5)

Prints, with --print-responses, one JSON line per request
{"index":I,"id":ID,"status":S,"body":...,"tampered":bool}, then always one JSON summary line:
{"sent":N,"status_counts":{"202":N,...},"retries":R,"batches_in_file":B,"signatures_matching_header":M,
 "lines_outside_batches":L}.

Exit status 0 when every request got an HTTP answer, 1 when one could not be sent (connection
error or timeout), 2 on a usage error or an unreadable input, 3 when `standardwebhooks` is missing
(CI installs it: python3 -m pip install -r scripts/requirements.txt).
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

try:
    from standardwebhooks.webhooks import Webhook
except ImportError as error:  # pragma: no cover - depends on the environment
    print(f"webhook_sender.py: the Python package standardwebhooks is missing ({error}); "
          "install it with: python3 -m pip install -r scripts/requirements.txt", file=sys.stderr)
    sys.exit(3)


class UsageError(Exception):
    pass


def read_batches(data):
    """The signed frames of a stream: [(id, timestamp, signature, payload bytes)] and the count of
    non-blank lines outside any frame."""
    batches = []
    outside = 0
    offset = 0
    while offset < len(data):
        newline = data.find(b"\n", offset)
        end = len(data) if newline < 0 else newline
        line = data[offset:end]
        offset = end + 1
        if not line.strip():
            continue
        try:
            header = json.loads(line)
        except ValueError:
            outside += 1
            continue
        frame = header.get("batch") if isinstance(header, dict) else None
        if not isinstance(frame, dict):
            outside += 1
            continue
        try:
            size = int(frame["bytes"])
            batch = (str(frame["id"]), int(frame["timestamp"]), str(frame.get("signature", "")))
        except (KeyError, TypeError, ValueError) as error:
            raise UsageError(f"a batch header without a readable id, timestamp or bytes: {line[:200]!r} ({error})")
        payload = data[offset:offset + size]
        if len(payload) != size:
            raise UsageError(f"batch {batch[0]}: the input ends inside its payload ({len(payload)} of {size} bytes)")
        offset += size
        batches.append(batch + (payload,))
    return batches, outside


def tamper(payload):
    """One byte changed, the result still ASCII/UTF-8 and still one line per event: a digit in the
    second half becomes its neighbour (0<->1, 2<->3, ...), or else any ASCII letter changes case."""
    body = bytearray(payload)
    half = len(body) // 2
    for index in list(range(half, len(body))) + list(range(0, half)):
        if 0x30 <= body[index] <= 0x39:
            body[index] ^= 0x01
            return bytes(body)
    for index in range(len(body)):
        if chr(body[index]).isalpha() and body[index] < 0x80:
            body[index] ^= 0x20
            return bytes(body)
    raise UsageError("cannot tamper with a payload without digits or letters")


def parse_only(values, count):
    chosen = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                index = int(part)
            except ValueError:
                raise UsageError(f"--only {value!r}: batch numbers are integers")
            if not 1 <= index <= count:
                raise UsageError(f"--only {index}: the input holds batches 1 to {count}")
            chosen.append(index)
    return chosen


def post(url, payload, headers, timeout):
    """(status, body text, headers) of one POST; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=payload, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace"), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode("utf-8", "replace"), error.headers


def main():
    ap = argparse.ArgumentParser(description="POST the batches of a signed roas stream as Standard Webhooks")
    ap.add_argument("url", metavar="URL", help="the webhook endpoint, e.g. http://127.0.0.1:8080/v1/events")
    ap.add_argument("--secret", required=True, help="whsec_<base64 key>")
    ap.add_argument("--input", required=True, help="the stream (roas gen --secret ...), or - for stdin")
    ap.add_argument("--only", action="append", default=[], metavar="I[,J...]", help="send only these batches (1-based)")
    ap.add_argument("--tamper", type=int, default=0, metavar="N", help="flip a byte of every Nth sent payload after signing")
    ap.add_argument("--header-timestamp", action="store_true", help="send the batch's own timestamp instead of now")
    ap.add_argument("--retries", type=int, default=5, help="retries of a 503 answer (default 5)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds to wait for each answer (default 30)")
    ap.add_argument("--print-responses", action="store_true", help="print one JSON line per request")
    args = ap.parse_args()

    try:
        if args.tamper < 0 or args.retries < 0:
            raise UsageError("--tamper and --retries must not be negative")
        if args.input == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.input, "rb") as handle:
                data = handle.read()
        batches, outside = read_batches(data)
        order = parse_only(args.only, len(batches)) or list(range(1, len(batches) + 1))
        webhook = Webhook(args.secret)
    except (OSError, UsageError) as error:
        print(f"webhook_sender.py: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a secret the package refuses
        print(f"webhook_sender.py: {type(error).__name__}: {error}", file=sys.stderr)
        return 2

    status_counts = {}
    retries = 0
    matching = 0
    sent = 0
    for position, index in enumerate(order, start=1):
        batch_id, header_timestamp, header_signature, payload = batches[index - 1]
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as error:
            print(f"webhook_sender.py: batch {batch_id} is not UTF-8 ({error})", file=sys.stderr)
            return 2
        at_header = datetime.fromtimestamp(header_timestamp, tz=timezone.utc)
        if webhook.sign(batch_id, at_header, text) in header_signature.split(" "):
            matching += 1
        tampered = args.tamper > 0 and position % args.tamper == 0
        attempt = 0
        while True:
            when = at_header if args.header_timestamp else datetime.now(tz=timezone.utc)
            headers = {
                "Content-Type": "application/x-ndjson",
                "webhook-id": batch_id,
                "webhook-timestamp": str(int(when.timestamp())),
                "webhook-signature": webhook.sign(batch_id, when, text),
            }
            body = tamper(payload) if tampered else payload
            try:
                status, answer, answer_headers = post(args.url, body, headers, args.timeout)
            except (OSError, urllib.error.URLError) as error:
                print(f"webhook_sender.py: POST {args.url} (batch {batch_id}) failed: {error}", file=sys.stderr)
                print(json.dumps({"sent": sent, "status_counts": status_counts, "retries": retries,
                                  "batches_in_file": len(batches), "signatures_matching_header": matching,
                                  "lines_outside_batches": outside, "error": str(error)}))
                return 1
            if status == 503 and attempt < args.retries:
                attempt += 1
                retries += 1
                try:
                    wait = float(answer_headers.get("Retry-After", "1"))
                except ValueError:
                    wait = 1.0
                time.sleep(min(max(wait, 0.1), 10))
                continue
            break
        sent += 1
        status_counts[str(status)] = status_counts.get(str(status), 0) + 1
        if args.print_responses:
            try:
                parsed = json.loads(answer)
            except ValueError:
                parsed = answer
            print(json.dumps({"index": index, "id": batch_id, "status": status, "body": parsed, "tampered": tampered}),
                  flush=True)

    print(json.dumps({"sent": sent, "status_counts": status_counts, "retries": retries,
                      "batches_in_file": len(batches), "signatures_matching_header": matching,
                      "lines_outside_batches": outside}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
