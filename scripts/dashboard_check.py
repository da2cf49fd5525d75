#!/usr/bin/env python3
"""Loads the roas dashboard in headless Chromium and checks the creators table.

    python3 scripts/dashboard_check.py BASE_URL --expect CREATOR=ROAS_TEXT [--expect ...]
                                            [--model NAME] [--expect-model NAME] [--expect-spread CREATOR=TEXT]
                                            [--screenshot PATH] [--token TOKEN] [--timeout SECONDS]

Runs `chromium --headless=new --no-sandbox --disable-gpu --virtual-time-budget=8000 --dump-dom URL`
(URL is BASE_URL/, with a fragment of #token=TOKEN with --token and model=NAME with --model, e.g.
BASE_URL/#token=T&model=linear), parses the DOM and asserts that the table
`table#creators` has, for each --expect, a row `tr[data-creator=CREATOR]` whose `td.roas` text is
ROAS_TEXT, e.g. --expect c1=3.42x ("x" and "×" are the same; "-" and "–" too, for a null ROAS).
CREATOR "(unattributed)" matches the row `tr[data-unattributed="true"]`. With rows keyed by
(creator, campaign), write CREATOR|CAMPAIGN to pick one row; a bare CREATOR passes when any of its
rows has that ROAS. --expect-cell CREATOR#CLASS=TEXT checks another cell of the row the same way,
e.g. --expect-cell c1#cpa=12.50 or --expect-cell "c1#roi=-3.10%" ("–" for null).

With `roas serve --models`: --model NAME opens the page on that model (#model=NAME, as a reload
after choosing it in the switch does); --expect-model NAME checks that the model switch
(select#model-switch) is shown with NAME selected and that the header's model pill names it;
--expect-spread CREATOR=TEXT checks the "Model spread" table (table#spread) row of CREATOR (or
CREATOR|CAMPAIGN) has the spread TEXT in td.spread, e.g. --expect-spread c1=1.38;
--expect-spread-cell CREATOR#CLASS=TEXT another cell of that row, e.g. "c1#lowest=1.38× first-touch"
or "c1#m-linear=2.06×" (one td.m-MODEL per model). --expect-single-model checks the page as served
without --models: no model switch, no spread card.
With --screenshot the page is also rendered to PATH at 1280x900.

Exit status: 0 when every expectation holds, 1 when one does not (the table found is printed),
2 on a usage error or when Chromium is missing, fails or times out.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser

APT_LOG = "/tmp/apt-chromium.log"


def find_chromium(wait_seconds):
    """The chromium binary; waits for a running `apt-get install chromium` (its log ends with "done")."""
    deadline = time.time() + wait_seconds
    announced = False
    while True:
        for name in ("chromium", "chromium-browser"):
            path = shutil.which(name)
            if path:
                return path
        installing = os.path.exists(APT_LOG)
        if installing:
            with open(APT_LOG, errors="replace") as log:
                installing = "done" not in log.read()[-2000:]
        if not installing or time.time() > deadline:
            return None
        if not announced:
            print(f"dashboard_check: waiting for apt-get install chromium ({APT_LOG})", file=sys.stderr)
            announced = True
        time.sleep(3)


class TableParser(HTMLParser):
    """Collects rows of table#creators > tbody: attributes and the text of each td by class."""

    def __init__(self, table_id="creators"):
        super().__init__(convert_charrefs=True)
        self.table_id = table_id
        self.rows = []          # [{"attrs": {...}, "cells": {class: text}}]
        self.body_attrs = {}
        self.banner = ""
        self.headers = []       # (text, hidden-by-class) of table#creators th
        self.table_classes = ""
        self._table_depth = 0   # >0 while inside table#creators
        self._in_tbody = False
        self._row = None
        self._cell = None       # [class, [text]]
        self._th = None
        self._banner_depth = 0
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "body":
            self.body_attrs = a
        if tag == "table":
            if self._table_depth:
                self._table_depth += 1
            elif a.get("id") == self.table_id:
                self._table_depth = 1
                self.table_classes = a.get("class", "")
        if a.get("id") == "banner" and "show" in a.get("class", "").split():
            self._banner_depth = 1
        elif self._banner_depth and tag not in ("br", "img", "input"):
            self._banner_depth += 1
        if self._table_depth != 1:
            return
        if tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self._row = {"attrs": a, "cells": {}}
        elif tag == "td" and self._row is not None:
            self._cell = [a.get("class", ""), []]
        elif tag == "th":
            self._th = [a.get("class", ""), []]

    def handle_endtag(self, tag):
        if self._banner_depth:
            self._banner_depth -= 1
        if tag == "table" and self._table_depth:
            self._table_depth -= 1
            return
        if self._table_depth != 1:
            return
        if tag == "td" and self._cell is not None and self._row is not None:
            text = " ".join("".join(self._cell[1]).split())
            for cls in self._cell[0].split() or [""]:
                self._row["cells"].setdefault(cls, text)
            self._cell = None
        elif tag == "th" and self._th is not None:
            self.headers.append((" ".join("".join(self._th[1]).split()), self._th[0]))
            self._th = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:
                self.rows.append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_tbody = False

    def handle_data(self, data):
        if self._banner_depth:
            self.banner += data
        if self._cell is not None:
            self._cell[1].append(data)
        elif self._th is not None:
            self._th[1].append(data)


class ModelParser(HTMLParser):
    """The model switch (select#model-switch: its options, the selected one, whether its wrapper
    #model-switch-wrap is hidden), the header's #pill-model text and whether #spread-card is hidden."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hidden = {}        # id -> has the hidden attribute
        self.options = []       # [(value, selected)]
        self.pill_model = ""
        self._in_select = False
        self._pill_depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.hidden[a["id"]] = "hidden" in a
        if self._pill_depth:
            self._pill_depth += 1
        elif a.get("id") == "pill-model":
            self._pill_depth = 1
        if tag == "select" and a.get("id") == "model-switch":
            self._in_select = True
        elif tag == "option" and self._in_select:
            self.options.append((a.get("value") or "", "selected" in a))

    def handle_endtag(self, tag):
        if self._pill_depth:
            self._pill_depth -= 1
        if tag == "select":
            self._in_select = False

    def handle_data(self, data):
        if self._pill_depth:
            self.pill_model += data


def normalize_roas(text):
    t = " ".join(text.split()).replace("x", "×").replace("X", "×")
    return "–" if t in ("-", "—", "–", "") else t


def normalize_times(text):
    """Like normalize_cell, with an "x" right after a digit read as "×" (model names stay as they are)."""
    return re.sub(r"(\d)[xX]", "\\1×", normalize_cell(text))


def normalize_cell(text):
    t = " ".join(text.split())
    return "–" if t in ("-", "—", "–", "") else t


def row_label(row):
    a = row["attrs"]
    creator = "(unattributed)" if a.get("data-unattributed") == "true" else a.get("data-creator", "?")
    return creator + (f"|{a['data-campaign']}" if "data-campaign" in a else "")


def run_chromium(chromium, args, timeout):
    with tempfile.TemporaryDirectory(prefix="dashboard-check-") as profile:
        cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=8000",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--hide-scrollbars", f"--user-data-dir={profile}"] + args
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"dashboard_check: chromium did not finish within {timeout} s: {' '.join(cmd)}", file=sys.stderr)
            sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url", metavar="BASE_URL")
    ap.add_argument("--expect", action="append", default=[], metavar="CREATOR=ROAS_TEXT",
                    help="a creator (or CREATOR|CAMPAIGN, or (unattributed)) and its ROAS text, e.g. c1=3.42×")
    ap.add_argument("--expect-cell", action="append", default=[], metavar="CREATOR#CLASS=TEXT",
                    help="the text of another cell of a creator's row (td.CLASS), e.g. c1#cpa=12.50")
    ap.add_argument("--expect-tier", action="append", default=[], metavar="TIER#CLASS=TEXT",
                    help="the text of a cell of the by-tier table's row for TIER (td.CLASS), e.g. micro#roas=1.20×")
    ap.add_argument("--expect-alert", action="append", default=[], metavar="RULE|KEY=STATE",
                    help="the alerts panel has a row for RULE and KEY (a creator) in STATE (firing or resolved)")
    ap.add_argument("--model", metavar="NAME", help="load the page on model NAME (#model=NAME), with roas serve --models")
    ap.add_argument("--expect-model", metavar="NAME",
                    help="the model switch is shown with NAME selected, and the header names NAME")
    ap.add_argument("--expect-single-model", action="store_true",
                    help="neither the model switch nor the spread card is shown (roas serve without --models)")
    ap.add_argument("--expect-spread", action="append", default=[], metavar="CREATOR=TEXT",
                    help="the spread text of a creator's row in the Model spread table, e.g. c1=1.38")
    ap.add_argument("--expect-spread-cell", action="append", default=[], metavar="CREATOR#CLASS=TEXT",
                    help="another cell of a creator's row in the Model spread table (td.CLASS), "
                         "e.g. 'c1#lowest=1.38× first-touch' or 'c1#m-linear=2.06×'")
    ap.add_argument("--screenshot", metavar="PATH", help="also save a 1280x900 PNG of the page")
    ap.add_argument("--token", help="load BASE_URL/#token=TOKEN")
    ap.add_argument("--timeout", type=float, default=90, help="seconds to allow each chromium run (default 90)")
    args = ap.parse_args()

    expectations = []
    for spec in args.expect:
        key, sep, roas = spec.rpartition("=")
        if not sep or not key:
            ap.error(f"--expect {spec!r}: use CREATOR=ROAS_TEXT")
        creator, _, campaign = key.partition("|")
        expectations.append((spec, creator, campaign if "|" in key else None, normalize_roas(roas)))

    def cell_spec(flag, spec, form):
        """ROW#CLASS=TEXT as (ROW, CLASS, normalized TEXT)."""
        key, sep, text = spec.partition("=")
        row, hash_sign, cls = key.rpartition("#")
        if not sep or not hash_sign or not row or not cls:
            ap.error(f"{flag} {spec!r}: use {form}")
        return row, cls, normalize_cell(text)

    cell_expectations = []
    for spec in args.expect_cell:
        target, cls, text = cell_spec("--expect-cell", spec, "CREATOR#CLASS=TEXT")
        creator, _, campaign = target.partition("|")
        cell_expectations.append((spec, creator, campaign if "|" in target else None, cls, text))

    tier_expectations = [(spec,) + cell_spec("--expect-tier", spec, "TIER#CLASS=TEXT") for spec in args.expect_tier]

    spread_expectations = []
    for spec in args.expect_spread:
        key, sep, text = spec.rpartition("=")
        if not sep or not key:
            ap.error(f"--expect-spread {spec!r}: use CREATOR=TEXT")
        creator, _, campaign = key.partition("|")
        spread_expectations.append(("--expect-spread", spec, creator, campaign if "|" in key else None, "spread",
                                    normalize_times(text)))
    for spec in args.expect_spread_cell:
        target, cls, text = cell_spec("--expect-spread-cell", spec, "CREATOR#CLASS=TEXT")
        creator, _, campaign = target.partition("|")
        spread_expectations.append(("--expect-spread-cell", spec, creator, campaign if "|" in target else None, cls,
                                    normalize_times(text)))

    chromium = find_chromium(wait_seconds=600)
    if not chromium:
        print("dashboard_check: no chromium or chromium-browser on PATH (apt-get install chromium)", file=sys.stderr)
        return 2

    url = args.base_url.rstrip("/") + "/"
    fragment = []
    if args.token:
        fragment.append("token=" + args.token)
    if args.model:
        fragment.append("model=" + args.model)
    if fragment:
        url += "#" + "&".join(fragment)

    result = run_chromium(chromium, ["--dump-dom", url], args.timeout)
    dom = result.stdout.decode("utf-8", errors="replace")
    if result.returncode != 0 or not dom.strip():
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        noise = ("dbus", "zygote", "Fontconfig", "gcm", "GPU", "gpu")
        err = [l for l in lines if not any(n in l for n in noise)][-5:] or lines[-5:]
        print(f"dashboard_check: chromium --dump-dom {url} failed (exit {result.returncode}):\n  " + "\n  ".join(err),
              file=sys.stderr)
        return 2

    parser = TableParser()
    parser.feed(dom)
    parser.close()
    tiers = TableParser("tiers")
    tiers.feed(dom)
    tiers.close()
    alerts = TableParser("alerts")
    alerts.feed(dom)
    alerts.close()
    spread = TableParser("spread")
    spread.feed(dom)
    spread.close()
    models = ModelParser()
    models.feed(dom)
    models.close()

    problems = []
    if not parser.body_attrs and "table" not in dom:
        problems.append("the page has no body: is BASE_URL the roas server?")
    if parser.body_attrs.get("data-loaded") != "true":
        detail = parser.body_attrs.get("data-error") or "no successful GET /v1/roas"
        problems.append(f"the page did not load its data ({detail})")
    if parser.banner.strip():
        problems.append("the page shows an error: " + " ".join(parser.banner.split()))

    rows = [r for r in parser.rows if "roas" in r["cells"]]

    def rows_of(creator, campaign, rows=rows):
        def matches(r):
            a = r["attrs"]
            if creator == "(unattributed)":
                ok = a.get("data-unattributed") == "true"
            else:
                ok = a.get("data-creator") == creator
            return ok and (campaign is None or a.get("data-campaign", "") == campaign)
        return [r for r in rows if matches(r)]

    for spec, creator, campaign, want in expectations:
        candidates = rows_of(creator, campaign)
        if not candidates:
            problems.append(f"--expect {spec}: no row for {creator}" + (f"|{campaign}" if campaign is not None else ""))
        elif not any(normalize_roas(r["cells"]["roas"]) == want for r in candidates):
            got = ", ".join(normalize_roas(r["cells"]["roas"]) for r in candidates)
            problems.append(f"--expect {spec}: ROAS is {got}, expected {want}")
    for spec, creator, campaign, cls, want in cell_expectations:
        candidates = rows_of(creator, campaign)
        if not candidates:
            problems.append(f"--expect-cell {spec}: no row for {creator}" + (f"|{campaign}" if campaign is not None else ""))
        elif not any(normalize_cell(r["cells"].get(cls, "?")) == want for r in candidates):
            got = ", ".join(normalize_cell(r["cells"].get(cls, "(no td." + cls + ")")) for r in candidates)
            problems.append(f"--expect-cell {spec}: td.{cls} is {got}, expected {want}")

    for spec, tier, cls, want in tier_expectations:
        candidates = [r for r in tiers.rows if r["attrs"].get("data-tier") == tier]
        if not candidates:
            problems.append(f"--expect-tier {spec}: no row for tier {tier}")
        elif normalize_cell(candidates[0]["cells"].get(cls, "?")) != want:
            got = normalize_cell(candidates[0]["cells"].get(cls, "(no td." + cls + ")"))
            problems.append(f"--expect-tier {spec}: td.{cls} is {got}, expected {want}")

    spread_rows = [r for r in spread.rows if "spread" in r["cells"]]
    for flag, spec, creator, campaign, cls, want in spread_expectations:
        candidates = rows_of(creator, campaign, spread_rows)
        if models.hidden.get("spread-card", True):
            problems.append(f"{flag} {spec}: the Model spread card is not shown")
        elif not candidates:
            problems.append(f"{flag} {spec}: no row for {creator}" + (f"|{campaign}" if campaign is not None else "")
                            + " in the Model spread table")
        elif not any(normalize_times(r["cells"].get(cls, "?")) == want for r in candidates):
            got = ", ".join(normalize_times(r["cells"].get(cls, "(no td." + cls + ")")) for r in candidates)
            problems.append(f"{flag} {spec}: td.{cls} is {got}, expected {want}")

    if args.expect_model:
        selected = [value for value, chosen in models.options if chosen]
        if "model-switch" not in models.hidden:
            problems.append(f"--expect-model {args.expect_model}: the page has no select#model-switch")
        elif models.hidden.get("model-switch-wrap", True) or models.hidden.get("model-switch"):
            problems.append(f"--expect-model {args.expect_model}: the model switch is hidden")
        elif selected != [args.expect_model]:
            problems.append(f"--expect-model {args.expect_model}: the switch shows {', '.join(selected) or 'nothing'} "
                            f"selected (options: {', '.join(v for v, _ in models.options)})")
        if not " ".join(models.pill_model.split()).startswith(args.expect_model + " "):
            problems.append(f"--expect-model {args.expect_model}: the header's model pill says {models.pill_model!r}")
    if args.expect_single_model:
        if not models.hidden.get("model-switch-wrap", True):
            problems.append("--expect-single-model: the model switch is shown")
        if not models.hidden.get("spread-card", True):
            problems.append("--expect-single-model: the Model spread card is shown")

    for spec in args.expect_alert:
        key, sep, state = spec.rpartition("=")
        rows = [r for r in alerts.rows if r["attrs"].get("data-alert") == key]
        if not sep or not key:
            problems.append(f"--expect-alert {spec!r}: use RULE|KEY=STATE")
        elif not rows:
            problems.append(f"--expect-alert {spec}: no row for {key} in the alerts panel")
        elif not any(normalize_cell(r["cells"].get("state", "?")) == state for r in rows):
            problems.append(f"--expect-alert {spec}: the state is {', '.join(r['cells'].get('state', '?') for r in rows)}")

    if args.screenshot:
        shot = os.path.abspath(args.screenshot)
        res = run_chromium(chromium, [f"--screenshot={shot}", "--window-size=1280,900", url], args.timeout)
        if res.returncode != 0 or not os.path.exists(shot):
            problems.append(f"screenshot failed (chromium exit {res.returncode})")
        else:
            print(f"dashboard_check: screenshot saved to {shot}")

    if problems:
        print(f"dashboard_check: FAILED for {url}", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        print(f"  table#creators rows ({len(rows)}):", file=sys.stderr)
        for r in rows:
            print(f"    {row_label(r):<30} roas={r['cells'].get('roas', '?'):<12} "
                  f"revenue={r['cells'].get('revenue', '?')} spend={r['cells'].get('spend', '?')}", file=sys.stderr)
        if spread_rows:
            print(f"  table#spread rows ({len(spread_rows)}):", file=sys.stderr)
            for r in spread_rows:
                print(f"    {row_label(r):<30} spread={r['cells'].get('spread', '?'):<8} lowest={r['cells'].get('lowest', '?')} "
                      f"highest={r['cells'].get('highest', '?')}", file=sys.stderr)
        return 1
    count = len(expectations) + len(cell_expectations) + len(tier_expectations) + len(args.expect_alert) \
        + len(spread_expectations) + bool(args.expect_model) + bool(args.expect_single_model)
    print(f"dashboard_check: OK, {count} expectation(s) met in {len(rows)} table row(s)"
          + (f" and {len(spread_rows)} spread row(s)" if spread_rows else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
