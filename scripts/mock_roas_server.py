#!/usr/bin/env python3
"""A stand-in for `roas serve`'s HTTP side, to develop and test the dashboard without the Swift server.

    python3 scripts/mock_roas_server.py [--port 8787] [--scenario demo|fixed] [--token TOKEN]
                                             [--by-campaign] [--models LIST|all]
                                             [--dashboard Sources/RoasServer/Dashboard]

Serves:
  GET /            the dashboard: dashboard.html with dashboard.css and dashboard.js inlined where it
                   links them, read from the folder at each request, as roas serve assembles them
  GET /v1/roas     a snapshot: {generated_at, watermark, model, models, window, slide, by, rows, recent_windows,
                   stats}; `?model=NAME` picks one of the served models (another name is a 400), `?limit=`, `?sort=roas`
  GET /v1/spread   {generated_at, models, rows: [{creator, campaign, tier, roas: {MODEL: ROAS|null}, lowest: {model,
                   roas}, highest: {model, roas}, spread}]}: per key with a ROAS under at least two models, widest
                   spread first (`?limit=`); rows is empty without --models
  GET /v1/stream   server-sent events: `row` (ROW; with --models one per model, each with "model") and `stats`
                   (STATS, every second)

--models LIST (comma-separated, or "all" for last-touch,first-touch,linear,time-decay,position) serves
every listed model as `roas serve --models` does: the first listed is shown without `?model=`, rows carry
"model". A model's rows are the base (last-touch) rows with revenue and refunds scaled per creator
(MODEL_FACTORS: in the fixed scenario c1 and c2 move, c3 and c4 do not; the demo's creators each
by a stable factor per model); window totals stay the base ones.

Scenarios:
  demo   (default) a dozen creators with live, moving figures; simulated time runs 120x faster
         than real time so a 1 h window closes every 30 s (final rows, a new bar in the chart).
  fixed  deterministic data for dashboard_check.py; the stream sends stats every second and, once
         on the first stream connection, 0.3 s after it opens, these row events (also applied to
         later snapshots):
           c2 open row (roas 0.5)               -> c2 shows 0.50x
           c1 final row for its open window      -> c1 shows its closed figure 2.75x
           c4 open row with spend 0             -> c4 shows "–"
         Expected table (ROAS text): c1=2.75x c2=0.50x c3=1.20x c4=–, (unattributed)=–.
         With --models all, after the script, /v1/roas?model=linear shows c1=2.06x c2=0.63x c3=1.20x
         c4=–, and /v1/spread (spreads as the dashboard prints them) c1=1.38 (first-touch 1.38x to
         last-touch 2.75x), c2=0.25 (last-touch 0.50x to first-touch 0.75x), c3=0.00; c4 (no spend)
         and (unattributed) are not in it. With --models the stream also sends every open row again
         each second, once per model in the order listed, so a page that applied another model's
         rows than the one it shows would end up showing the last model's figures (c2=0.70x under all).

With --token every /v1/* request must carry ?access_token=TOKEN (else 401). Exits on Ctrl-C.
"""
import argparse
import json
import math
import os
import random
import re
import sys
import threading
import time
import zlib
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DASHBOARD = os.path.join(REPO, "Sources", "RoasServer", "Dashboard")


STYLE_LINK = '<link rel="stylesheet" href="dashboard.css">'
SCRIPT_LINK = '<script src="dashboard.js"></script>'


def assemble_page(folder):
    """The page roas serve answers GET / with (DashboardPage.assemble in Swift): dashboard.html
    without its last line break, its style-sheet link replaced by a <style> element holding
    dashboard.css and its script link by a <script> element holding dashboard.js."""
    def read(name):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            return f.read()
    html, css, js = read("dashboard.html"), read("dashboard.css"), read("dashboard.js")
    if html.endswith("\n"):
        html = html[:-1]
    for link in (STYLE_LINK, SCRIPT_LINK):
        if link not in html:
            raise ValueError(f"dashboard.html does not hold {link}")
    html = html.replace(STYLE_LINK, "<style>\n" + css + "</style>", 1)
    return html.replace(SCRIPT_LINK, "<script>\n" + js + "</script>", 1)


def iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


ALL_MODELS = ["last-touch", "first-touch", "linear", "time-decay", "position"]
# Per model, the factor on revenue and refunds of the fixed scenario's creators (c3 and c4 the same
# under every model). Other creators (the demo's) get a stable factor from 0.5 to 1.5 per model,
# 1 under last-touch; unattributed rows 1 under every model.
MODEL_FACTORS = {
    "last-touch": {"c1": 1.0, "c2": 1.0, "c3": 1.0, "c4": 1.0},
    "first-touch": {"c1": 0.5, "c2": 1.5, "c3": 1.0, "c4": 1.0},
    "linear": {"c1": 0.75, "c2": 1.25, "c3": 1.0, "c4": 1.0},
    "time-decay": {"c1": 0.9, "c2": 1.1, "c3": 1.0, "c4": 1.0},
    "position": {"c1": 0.6, "c2": 1.4, "c3": 1.0, "c4": 1.0},
}


def model_factor(model, creator):
    factors = MODEL_FACTORS.get(model, {})
    if creator in factors:
        return factors[creator]
    if creator is None or model == "last-touch":
        return 1.0
    return 0.5 + zlib.crc32(f"{model}/{creator}".encode()) % 101 / 100


def model_row(row, model):
    """ROW as MODEL credits it (see MODEL_FACTORS), with a leading "model" field; None stays None."""
    if row is None:
        return None
    factor = model_factor(model, row.get("creator"))
    out = {"model": model}
    out.update(row)
    out["revenue"] = round(row["revenue"] * factor, 2)
    out["refunds"] = round(row["refunds"] * factor, 2)
    out["roas"] = (out["revenue"] - out["refunds"]) / out["spend"] if out["spend"] > 0 else None
    return out


def make_row(start, end, creator, campaign, views, clicks, conversions, revenue, refunds, spend, final):
    revenue, refunds, spend = round(revenue, 2), round(refunds, 2), round(spend, 2)
    return {
        "window_start": iso(start), "window_end": iso(end), "creator": creator, "campaign": campaign,
        "views": views, "clicks": clicks, "conversions": conversions,
        "revenue": revenue, "refunds": refunds, "spend": spend,
        "roas": (revenue - refunds) / spend if spend > 0 else None, "final": final,
    }


class World:
    """Shared state: per-key open/closed rows, recent windows and cumulative stats."""

    def __init__(self, scenario, by_campaign, models=None):
        self.lock = threading.Lock()
        self.scenario = scenario
        self.models = models      # None: one model (last-touch), rows without "model"
        self.by = "creator,campaign" if by_campaign else "creator"
        self.rows = {}       # (creator, campaign) -> {"open": ROW|None, "closed": ROW|None}
        self.windows = []    # closed windows summed over keys
        self.subscribers = []
        self.accepted_events = 0
        self.dead_letters = 0
        self.accepted_batches = 0
        self.rejected_batches = 0
        self.eps = 0.0
        self.rng = random.Random(7)
        if scenario == "fixed":
            self._init_fixed()
        else:
            self._init_demo(by_campaign)

    # -- scenarios ---------------------------------------------------------------------------------
    def _init_fixed(self):
        self.sim_start = datetime(2026, 11, 21, 10, 4, 55, tzinfo=timezone.utc)
        self.speed = 1.0
        self.real_start = time.time()
        ws = datetime(2026, 11, 21, 10, tzinfo=timezone.utc)
        we = ws + timedelta(hours=1)
        ps, pe = ws - timedelta(hours=1), ws
        self.rows = {
            ("c1", None): {"open": make_row(ws, we, "c1", None, 100, 10, 2, 120.5, 0, 40, False),
                           "closed": make_row(ps, pe, "c1", None, 900, 50, 5, 300, 10, 100, True)},
            ("c2", None): {"open": None,
                           "closed": make_row(ps, pe, "c2", None, 500, 20, 1, 80, 0, 50, True)},
            ("c3", None): {"open": make_row(ws, we, "c3", None, 0, 0, 1, 1200, 0, 1000, False), "closed": None},
            ("c4", None): {"open": make_row(ws, we, "c4", None, 40, 0, 0, 0, 0, 25, False), "closed": None},
            (None, None): {"open": make_row(ws, we, None, None, 0, 0, 1, 15.25, 0, 0, False), "closed": None},
        }
        self.windows = [
            {"window_start": iso(ws - timedelta(hours=h + 1)), "window_end": iso(ws - timedelta(hours=h)),
             "revenue": 1000 + 150 * ((h * 7) % 5), "refunds": 20.0, "spend": 700 + 90 * ((h * 3) % 4), "conversions": 10 + h}
            for h in reversed(range(12))
        ]
        # the previous window's final rows (c1 and c2) are part of the newest closed window
        self.windows[-1].update({"revenue": 380.0, "refunds": 10.0, "spend": 150.0, "conversions": 6})
        self.script = [
            make_row(ws, we, "c2", None, 600, 25, 1, 25, 0, 50, False),
            make_row(ws, we, "c1", None, 120, 12, 3, 110, 0, 40, True),  # (110 - 0) / 40 = 2.75
            make_row(ws, we, "c4", None, 60, 1, 0, 0, 0, 0, False),
        ]

    def _init_demo(self, by_campaign):
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.sim_start = now
        self.speed = 120.0
        self.real_start = time.time()
        names = ["mia.makes", "dan_cooks", "glowwithzoe", "techtimtalks", "fit.by.fern", "sam_unboxes",
                 "luna.styles", "outdoor_ollie", "bookish.bea", "gamer_gus", "petpals.pia", "diy_dev",
                 "travelwithtara", "mindful.mo"]
        campaigns = ["black-friday", "winter-drop", None]
        self.keys = []
        for i, n in enumerate(names):
            camp = campaigns[i % 3] if by_campaign else None
            self.keys.append((n, camp))
        self.keys.append((None, None))
        # per-key "quality": conversion value and spend rate
        self.quality = {k: (self.rng.uniform(0.4, 4.5), self.rng.uniform(30, 220)) for k in self.keys}
        self.quality[(None, None)] = (1.0, 0.0)
        self.window_start = self._floor_hour(self.sim_now())
        for h in reversed(range(1, 25)):
            s = self.window_start - timedelta(hours=h)
            rev = 0.0
            spend = 0.0
            conv = 0
            wave = 1.0 + 0.6 * math.sin(h / 3.0)
            for k in self.keys:
                q, sp = self.quality[k]
                spend_k = sp * wave * self.rng.uniform(0.7, 1.3)
                spend += spend_k
                rev += spend_k * q * self.rng.uniform(0.6, 1.3) if sp else self.rng.uniform(10, 60)
                conv += self.rng.randint(0, 9)
            self.windows.append({"window_start": iso(s), "window_end": iso(s + timedelta(hours=1)),
                                 "revenue": round(rev, 2), "refunds": round(rev * 0.03, 2),
                                 "spend": round(spend, 2), "conversions": conv})
        prev = self.window_start - timedelta(hours=1)
        for k in self.keys:
            q, sp = self.quality[k]
            spend = sp * self.rng.uniform(0.8, 1.2)
            views = self.rng.randint(2000, 90000) if k[0] else 0
            clicks = int(views * self.rng.uniform(0.005, 0.06))
            rev = spend * q * self.rng.uniform(0.7, 1.2) if sp else self.rng.uniform(20, 80)
            self.rows[k] = {"open": None, "closed": make_row(prev, self.window_start, k[0], k[1], views, clicks,
                                                                self.rng.randint(1, 30), rev, rev * 0.02, spend, True)}
        self._new_open_rows()

    @staticmethod
    def _floor_hour(dt):
        return dt.replace(minute=0, second=0, microsecond=0)

    def _new_open_rows(self):
        s, e = self.window_start, self.window_start + timedelta(hours=1)
        for k in self.keys:
            q, sp = self.quality[k]
            spend = sp * 0.15
            views = self.rng.randint(200, 6000) if k[0] else 0
            clicks = int(views * self.rng.uniform(0.005, 0.06))
            rev = spend * q * self.rng.uniform(0.5, 1.5) if sp else self.rng.uniform(2, 10)
            self.rows[k]["open"] = make_row(s, e, k[0], k[1], views, clicks, self.rng.randint(0, 3), rev, 0, spend, False)

    def sim_now(self):
        return self.sim_start + timedelta(seconds=(time.time() - self.real_start) * self.speed)

    # -- snapshot and events -------------------------------------------------------------------------
    def stats(self):
        now = self.sim_now().replace(microsecond=0)
        return {"time": iso(datetime.now(timezone.utc)), "watermark": iso(now),
                "events_per_second": round(self.eps, 1), "accepted_events": self.accepted_events,
                "dead_letters": self.dead_letters, "accepted_batches": self.accepted_batches,
                "rejected_batches": self.rejected_batches, "connections": len(self.subscribers)}

    def served_models(self):
        return self.models or ["last-touch"]

    def as_model(self, row, model):
        return model_row(row, model) if self.models else row

    def snapshot(self, limit, sort, model=None):
        model = model or self.served_models()[0]
        with self.lock:
            rows = [{"creator": k[0], "campaign": k[1], "open": self.as_model(v["open"], model),
                     "closed": self.as_model(v["closed"], model)} for k, v in self.rows.items()]

            def fig(r):
                f = r["open"] or r["closed"]
                return (f["roas"] is None, -(f["roas"] or 0), -f["revenue"])
            if sort == "roas":
                rows.sort(key=fig)
            return {"generated_at": iso(datetime.now(timezone.utc)), "watermark": iso(self.sim_now()),
                    "model": model, "models": self.served_models(), "window": "1h", "slide": "1h", "by": self.by,
                    "rows": rows[:limit], "recent_windows": self.windows[-48:], "stats": self.stats()}

    def spread(self, limit):
        """GET /v1/spread: per key, the shown row's ROAS under each model, widest spread first."""
        with self.lock:
            result = []
            for (creator, campaign), v in (self.rows.items() if self.models else []):
                shown = v["open"] or v["closed"]
                if shown is None:
                    continue
                roas = {m: model_row(shown, m)["roas"] for m in self.models}
                known = [(m, r) for m, r in roas.items() if r is not None]
                if len(known) < 2:
                    continue
                low = min(known, key=lambda item: item[1])
                high = max(known, key=lambda item: item[1])
                result.append({"creator": creator, "campaign": campaign, "tier": shown.get("tier"), "roas": roas,
                               "lowest": {"model": low[0], "roas": low[1]},
                               "highest": {"model": high[0], "roas": high[1]}, "spread": high[1] - low[1]})
            result.sort(key=lambda r: (-r["spread"], r["creator"] is None, r["creator"] or "", r["campaign"] or ""))
            return {"generated_at": iso(datetime.now(timezone.utc)), "models": self.served_models(),
                    "rows": result[:limit]}

    def publish_row(self, row):
        """A row event, once per served model."""
        for model in (self.models or [None]):
            self.publish("row", model_row(row, model) if model else row)

    def publish(self, event, data):
        msg = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
        for q in list(self.subscribers):
            q.append(msg)

    def tick_demo(self, dt):
        """Advance the demo world by dt real seconds: ingest, row updates, window closes."""
        with self.lock:
            self.eps = max(0.0, 9000 + 3500 * math.sin(time.time() / 20) + self.rng.uniform(-900, 900))
            n = int(self.eps * dt)
            self.accepted_events += n
            self.accepted_batches += max(1, n // 500)
            if self.rng.random() < 0.06 * dt * 5:
                self.rejected_batches += self.rng.randint(1, 4)
                self.dead_letters += self.rng.randint(1, 20)
            now = self.sim_now()
            if now >= self.window_start + timedelta(hours=1):
                total = {"window_start": iso(self.window_start), "window_end": iso(self.window_start + timedelta(hours=1)),
                         "revenue": 0.0, "refunds": 0.0, "spend": 0.0, "conversions": 0}
                for k in self.keys:
                    row = dict(self.rows[k]["open"], final=True)
                    self.rows[k] = {"open": None, "closed": row}
                    for f in ("revenue", "refunds", "spend", "conversions"):
                        total[f] += row[f]
                    self.publish_row(row)
                self.windows.append({k: (round(v, 2) if isinstance(v, float) else v) for k, v in total.items()})
                self.windows = self.windows[-48:]
                self.window_start = self._floor_hour(now)
                self._new_open_rows()
                for k in self.keys:
                    self.publish_row(self.rows[k]["open"])
                return
            for _ in range(self.rng.randint(1, 3)):
                k = self.rng.choice(self.keys)
                o = dict(self.rows[k]["open"])
                q, sp = self.quality[k]
                ds = sp * self.rng.uniform(0.0, 0.03)
                o["spend"] = round(o["spend"] + ds, 2)
                if k[0]:
                    dv = self.rng.randint(50, 900)
                    o["views"] += dv
                    o["clicks"] += int(dv * self.rng.uniform(0.005, 0.06))
                if self.rng.random() < 0.5:
                    o["conversions"] += 1
                    o["revenue"] = round(o["revenue"] + (ds * q * self.rng.uniform(0.5, 2.5) if sp else self.rng.uniform(5, 40)), 2)
                if self.rng.random() < 0.004:
                    o["refunds"] = round(o["refunds"] + self.rng.uniform(5, 30), 2)
                o["roas"] = (o["revenue"] - o["refunds"]) / o["spend"] if o["spend"] > 0 else None
                self.rows[k]["open"] = o
                self.publish_row(o)

    def run_script(self):
        """fixed scenario: apply and publish the scripted rows, once (on the first stream connection)."""
        with self.lock:
            script, self.script = self.script, []
            for row in script:
                entry = self.rows.setdefault((row["creator"], row["campaign"]), {"open": None, "closed": None})
                if row["final"]:
                    entry["closed"], entry["open"] = row, None
                    w = next((w for w in self.windows if w["window_start"] == row["window_start"]), None)
                    if w is None:
                        w = {"window_start": row["window_start"], "window_end": row["window_end"],
                             "revenue": 0.0, "refunds": 0.0, "spend": 0.0, "conversions": 0}
                        self.windows.append(w)
                    for f in ("revenue", "refunds", "spend", "conversions"):
                        w[f] += row[f]
                else:
                    entry["open"] = row
                self.publish_row(row)

    def tick_fixed(self, dt):
        with self.lock:
            self.eps = 12345.6
            self.accepted_events += int(self.eps * dt)
            self.accepted_batches += 10
            self.ticks = getattr(self, "ticks", 0) + 1
            if self.ticks % 25 == 0:  # a rejected batch every 5 s
                self.rejected_batches += 1
                self.dead_letters += 3
            if self.models and self.ticks % 5 == 0:
                # every second, each open row again under every model (the last listed last): a page
                # that applied rows of a model it does not show would show the last model's figures
                for entry in self.rows.values():
                    if entry["open"] is not None:
                        self.publish_row(entry["open"])


def make_handler(world, dashboard_folder, token):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "mock-roas/1"

        def log_message(self, fmt, *args):  # quiet unless ROAS_MOCK_LOG is set
            if os.environ.get("ROAS_MOCK_LOG"):
                sys.stderr.write("mock: " + (fmt % args) + "\n")

        def send_body(self, status, ctype, body, extra=None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            qs = parse_qs(url.query)
            if url.path == "/":
                try:
                    html = assemble_page(dashboard_folder)
                except Exception as error:  # show the problem in the browser
                    return self.send_body(500, "text/plain; charset=utf-8", f"cannot read page: {error}\n".encode())
                return self.send_body(200, "text/html; charset=utf-8", html.encode())
            if url.path.startswith("/v1/") and token and qs.get("access_token", [None])[0] != token:
                return self.send_body(401, "application/json", b'{"error":"unauthorized"}',
                                      {"WWW-Authenticate": "Bearer"})
            if url.path == "/v1/roas":
                limit = int(qs.get("limit", ["100"])[0])
                sort = qs.get("sort", ["roas"])[0]
                model = qs.get("model", [None])[0]
                if model is not None and model not in world.served_models():
                    message = "model must be one of the served models: " + ", ".join(world.served_models())
                    return self.send_body(400, "application/json", json.dumps({"error": message}).encode())
                body = json.dumps(world.snapshot(limit, sort, model)).encode()
                return self.send_body(200, "application/json", body)
            if url.path == "/v1/spread":
                body = json.dumps(world.spread(int(qs.get("limit", ["100"])[0]))).encode()
                return self.send_body(200, "application/json", body)
            if url.path == "/v1/stream":
                return self.stream()
            return self.send_body(404, "application/json", b'{"error":"not found"}')

        def stream(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            queue = []
            with world.lock:
                world.subscribers.append(queue)
            started = time.time()
            try:
                self.wfile.write(b": hello\n\n")
                self.wfile.flush()
                next_stats = time.time()
                while True:
                    now = time.time()
                    if world.scenario == "fixed" and now - started > 0.3:
                        world.run_script()
                    if now >= next_stats:
                        with world.lock:
                            st = world.stats()
                        queue.append(f"event: stats\ndata: {json.dumps(st)}\n\n".encode())
                        next_stats = now + 1.0
                    while queue:
                        self.wfile.write(queue.pop(0))
                    self.wfile.flush()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            finally:
                with world.lock:
                    if queue in world.subscribers:
                        world.subscribers.remove(queue)

    return Handler


def main():
    ap = argparse.ArgumentParser(description="mock roas serve for dashboard development")
    ap.add_argument("--port", type=int, default=8787)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--scenario", choices=["demo", "fixed"], default="demo")
    ap.add_argument("--by-campaign", action="store_true", help="rows keyed by (creator, campaign)")
    ap.add_argument("--models", metavar="LIST", help="serve these models side by side (comma-separated, or all: "
                    + ",".join(ALL_MODELS) + "), as roas serve --models does")
    ap.add_argument("--token", help="require ?access_token=TOKEN on /v1/*")
    ap.add_argument("--dashboard", default=DEFAULT_DASHBOARD,
                    help="the folder holding dashboard.html, dashboard.css and dashboard.js")
    args = ap.parse_args()

    assemble_page(args.dashboard)  # fail early on a broken page
    models = None
    if args.models:
        models = ALL_MODELS if args.models == "all" else args.models.split(",")
        unknown = [m for m in models if m not in ALL_MODELS]
        if unknown:
            ap.error(f"--models: unknown model {unknown[0]!r} (known: {', '.join(ALL_MODELS)} or all)")
    world = World(args.scenario, args.by_campaign, models)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(world, args.dashboard, args.token))
    server.daemon_threads = True

    def ticker():
        last = time.time()
        while True:
            time.sleep(0.2)
            now = time.time()
            (world.tick_fixed if args.scenario == "fixed" else world.tick_demo)(now - last)
            last = now

    threading.Thread(target=ticker, daemon=True).start()
    print(f"mock roas server on http://{args.host}:{server.server_address[1]}/ (scenario {args.scenario}"
          + (f", models {','.join(models)}" if models else "") + ")", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
