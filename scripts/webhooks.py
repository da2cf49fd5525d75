#!/usr/bin/env python3
"""Standard Webhooks signatures through the reference Python package `standardwebhooks`.

    python3 scripts/webhooks.py sign   --secret whsec_... --id ID --timestamp SECONDS --payload FILE
    python3 scripts/webhooks.py verify --secret whsec_... --id ID --timestamp SECONDS --payload FILE \
                                            --signature "v1,..."

`sign` prints `v1,<base64>` made by Webhook(secret).sign(id, timestamp, payload). `verify` calls
Webhook(secret).verify(payload, headers) with the webhook-id, webhook-timestamp and
webhook-signature headers (the package checks the timestamp is within 5 minutes of now) and exits
0 when it verifies, 1 when it does not. The payload is the file's bytes, decoded as UTF-8.

Exit status 2 on a usage error, 3 when the package is missing
(CI installs it: python3 -m pip install -r scripts/requirements.txt).
"""
import argparse
import sys
from datetime import datetime, timezone

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError as error:  # pragma: no cover - depends on the environment
    print(f"webhooks.py: the Python package standardwebhooks is missing ({error}); "
          "install it with: python3 -m pip install -r scripts/requirements.txt", file=sys.stderr)
    sys.exit(3)


def main():
    parser = argparse.ArgumentParser(description="Sign or verify with the standardwebhooks package.")
    parser.add_argument("mode", choices=["sign", "verify"])
    parser.add_argument("--secret", required=True, help="whsec_<base64 key>")
    parser.add_argument("--id", required=True, help="webhook-id (the batch id)")
    parser.add_argument("--timestamp", required=True, type=int, help="webhook-timestamp, epoch seconds")
    parser.add_argument("--payload", required=True, help="file holding the payload, or - for stdin")
    parser.add_argument("--signature", help="webhook-signature to verify (verify mode)")
    arguments = parser.parse_args()

    try:
        if arguments.payload == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(arguments.payload, "rb") as handle:
                data = handle.read()
        payload = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"webhooks.py: cannot read the payload {arguments.payload}: {error}", file=sys.stderr)
        return 2

    webhook = Webhook(arguments.secret)
    if arguments.mode == "sign":
        timestamp = datetime.fromtimestamp(arguments.timestamp, tz=timezone.utc)
        print(webhook.sign(arguments.id, timestamp, payload))
        return 0

    if not arguments.signature:
        print("webhooks.py: verify needs --signature", file=sys.stderr)
        return 2
    headers = {
        "webhook-id": arguments.id,
        "webhook-timestamp": str(arguments.timestamp),
        "webhook-signature": arguments.signature,
    }
    try:
        webhook.verify(payload, headers, json_parse=False)
    except WebhookVerificationError as error:
        print(f"webhooks.py: not verified: {error}")
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
