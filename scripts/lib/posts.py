"""Realistic blog posts for benchmarks: generated, created over HTTP, and bulk-copied in SQLite.

A post is about 2 KB of Markdown with headings, a list, a fenced code block with a language and a
table, so that saving one exercises the renderer, highlighter and sanitiser as real posts would.
Seeding goes through `POST /posts` (the real path); a large data set is then grown offline by
copying rows inside SQLite, older each round, so the newest seeded posts stay the newest.

    posts.py seed PORT --count N [--ids-out FILE] [--views V]
    posts.py form-body --out FILE            (one urlencoded valid form, for wrk's POST script)
    posts.py grow DB --count N               (server stopped; prints JSON about what was copied)
    posts.py checkpoint DB                   (server stopped; folds the WAL in, so one file copies it)
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
import re
import sqlite3
import sys
import urllib.parse

LOOPBACK = "127.0.0.1"

_TOPICS = [
    ("Rust", "rust", "fn main() {\n    let words = vec![\"prefork\", \"poll\", \"heartbeat\"];\n"
     "    for (i, w) in words.iter().enumerate() {\n        println!(\"{i}: {w}\");\n    }\n}"),
    ("Python", "python", "def fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n"
     "        a, b = b, a + b\n    return a\n\nprint([fib(i) for i in range(10)])"),
    ("SQL", "sql", "SELECT p.id, p.title, count(v.post_id) AS views\n  FROM posts p\n"
     "  LEFT JOIN views v ON v.post_id = p.id\n WHERE v.at > datetime('now', '-7 days')\n"
     " GROUP BY p.id\n ORDER BY views DESC\n LIMIT 5;"),
    ("Shell", "bash", "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.log; do\n"
     "  gzip -9 \"$f\" && echo \"compressed $f\"\ndone"),
    ("JavaScript", "javascript", "const debounce = (fn, ms) => {\n  let t;\n  return (...args) => {\n"
     "    clearTimeout(t);\n    t = setTimeout(() => fn(...args), ms);\n  };\n};"),
    ("Go", "go", "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tch := make(chan int)\n"
     "\tgo func() { ch <- 42 }()\n\tfmt.Println(<-ch)\n}"),
]
_WORDS = ("server worker master socket request response latency throughput kernel memory cache "
          "thread process signal reload upgrade database index query page post view count "
          "template render markdown table code block highlight sanitise static file header body "
          "keep-alive backlog timeout graceful restart benchmark profile measure").split()
_NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 16))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 5)))


def generate(rng: random.Random, number: int) -> dict[str, str]:
    """A valid form for post `number`: title (≤ 100 chars), name (≤ 8), ~2 KB of Markdown."""
    topic, lang, code = _TOPICS[number % len(_TOPICS)]
    title = f"{topic} notes #{number}: {' '.join(rng.choice(_WORDS) for _ in range(4))}"[:100]
    rows = "\n".join(
        f"| {rng.choice(_WORDS)} | {rng.randint(1, 999)} ms | {rng.randint(1, 99)}% |" for _ in range(4)
    )
    content = "\n\n".join([
        f"## Why {topic} today",
        _paragraph(rng),
        "- " + "\n- ".join(_sentence(rng) for _ in range(3)),
        f"```{lang}\n{code}\n```",
        _paragraph(rng),
        f"| step | latency | share |\n|------|--------:|------:|\n{rows}",
        "### What next",
        _paragraph(rng),
        f"> {_sentence(rng)}",
        f"See [the docs](https://example.org/{lang}) and *try it* with **care**.",
    ])
    return {"title": title, "name": rng.choice(_NAMES), "content": content}


# pyblogd refuses a POST unless it comes from one of its own pages: an Origin naming the site
# and a double-submit CSRF token, the same random value in a cookie and in the form. A script
# acts as that page: any value works, as long as cookie and field agree.
CSRF = "5c7a1f0e9b3d4c2a8e6f0b1d3c5a7e9f"


def form_body(form: dict[str, str]) -> str:
    """The urlencoded form as our pages send it: the CSRF token first."""
    return urllib.parse.urlencode({"csrf_token": CSRF, **form})


def browser_headers(host_port: str, cookies: str = "") -> dict[str, str]:
    """Headers of a form POST from our own page on `Host: host_port` (`ip:port`)."""
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"http://{host_port}",
        "Cookie": f"pyblogd_csrf={CSRF}{cookies}",
    }


_LOCATION = re.compile(r"/posts/(\d+)$")


def create(conn: http.client.HTTPConnection, form: dict[str, str]) -> int:
    """POST /posts; returns the new post id from the 303's Location."""
    conn.request("POST", "/posts", body=form_body(form),
                 headers=browser_headers(f"{conn.host}:{conn.port}"))
    resp = conn.getresponse()
    body = resp.read()
    location = resp.getheader("Location") or ""
    match = _LOCATION.search(urllib.parse.urlsplit(location).path)
    if resp.status != 303 or not match:
        raise RuntimeError(f"POST /posts answered {resp.status} Location={location!r}: {body[:200]!r}")
    return int(match.group(1))


def seed(port: int, count: int, views: int, rng_seed: int = 1) -> list[int]:
    """Creates `count` posts through the running server, then reads them `views` times
    (skewed, so that some posts are popular); returns the ids in creation order."""
    rng = random.Random(rng_seed)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    ids = [create(conn, generate(rng, n)) for n in range(1, count + 1)]
    for _ in range(views):
        post = ids[min(int(rng.paretovariate(1.2)) - 1, len(ids) - 1)]
        conn.request("GET", f"/posts/{post}")
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET /posts/{post} answered {resp.status} while seeding views")
    conn.close()
    return ids


# --- growing a database offline -------------------------------------------------------------

_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)([T ])(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$")


def _shift_time(value, seconds: float):
    """`value` (epoch s/ms/µs, Julian day, or ISO-8601 text) moved `seconds` into the past,
    in the same representation, so the server reads it exactly as it reads its own."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return str(_shift_time(int(value), seconds))
    if isinstance(value, int):
        unit = 1_000_000 if value > 10**14 else 1000 if value > 10**11 else 1
        return value - int(seconds * unit)
    if isinstance(value, float):
        if 2_000_000 < value < 3_000_000:  # a Julian day number (SQLite's julianday())
            return value - seconds / 86400.0
        return value - seconds
    match = _ISO.match(value)
    if not match:
        raise ValueError(f"cannot shift the time value {value!r}")
    date, sep, clock, frac, zone = match.groups()
    moment = dt.datetime.fromisoformat(f"{date}T{clock}{frac or ''}") - dt.timedelta(seconds=seconds)
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if frac:  # keep as many fraction digits as the original (truncated, never rounded up)
        text += "." + (f"{moment.microsecond:06d}" + "000")[: len(frac) - 1]
    return text + (zone or "")


def _epoch(value) -> float:
    """A time value as epoch seconds (only to compare and measure spans)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int):
        return value / (1_000_000 if value > 10**14 else 1000 if value > 10**11 else 1)
    if isinstance(value, float):
        return (value - 2440587.5) * 86400.0 if 2_000_000 < value < 3_000_000 else value
    date, _, clock, frac, _ = _ISO.match(value).groups()
    return dt.datetime.fromisoformat(f"{date}T{clock}{frac or ''}").replace(tzinfo=dt.timezone.utc).timestamp()


def _posts_table(db: sqlite3.Connection) -> str:
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for name in ("posts", "post"):
        if name in tables:
            return name
    raise RuntimeError(f"no posts table in the database (tables: {', '.join(tables)})")


def grow(path: str, count: int) -> dict:
    """Copies rows of the posts table until it holds `count` rows. The schema is read here,
    not assumed: an INTEGER PRIMARY KEY is left to SQLite, time columns (`*_at`, `created`,
    `date`...) are shifted older than every existing row, unique text columns get a suffix."""
    db = sqlite3.connect(path, isolation_level=None)
    db.create_function("pyblogd_shift_time", 2, _shift_time, deterministic=True)
    table = _posts_table(db)
    columns = db.execute(f"PRAGMA table_info({table})").fetchall()  # cid, name, type, notnull, dflt, pk
    pks = [c for c in columns if c[5]]
    auto_id = pks[0][1] if len(pks) == 1 and pks[0][2].upper() == "INTEGER" else None
    names = [c[1] for c in columns if c[1] != auto_id]
    time_cols = [n for n in names if n.lower().endswith("_at") or n.lower() in
                 ("created", "updated", "date", "timestamp", "published", "modified")]
    unique: set[str] = {c[1] for c in pks if c[1] != auto_id}
    for _, index, is_unique, *_ in db.execute(f"PRAGMA index_list({table})").fetchall():
        if is_unique:
            unique.update(r[2] for r in db.execute(f"PRAGMA index_info({index})").fetchall())
    unique -= set(time_cols)
    if not time_cols:
        raise RuntimeError(f"{table} has no recognisable time column among: {', '.join(names)}")
    order_col = next((n for n in time_cols if "creat" in n.lower()), time_cols[0])

    have = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if have == 0:
        raise RuntimeError(f"{table} is empty: seed some posts over HTTP first")
    start = have
    rounds = 0
    while have < count:
        rounds += 1
        newest, oldest = db.execute(f"SELECT max({order_col}), min({order_col}) FROM {table}").fetchone()
        span = _epoch(newest) - _epoch(oldest)
        # One post an hour on average going back, and always older than the oldest row so far.
        shift = max(have * 3600.0, span + 1.0)
        batch = min(have, count - have)
        exprs = []
        for n in names:
            if n in time_cols:
                exprs.append(f"pyblogd_shift_time({n}, {shift!r})")
            elif n in unique:
                exprs.append(f"{n} || '-copy{rounds}'")
            else:
                exprs.append(n)
        db.execute("BEGIN")
        db.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(exprs)} "
                   f"FROM {table} ORDER BY rowid LIMIT {batch}")
        db.execute("COMMIT")
        have += batch
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {"table": table, "before": start, "after": have, "rounds": rounds,
            "copied_columns": names, "shifted": time_cols, "suffixed": sorted(unique)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed")
    s.add_argument("port", type=int)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--views", type=int, default=0)
    s.add_argument("--ids-out")
    f = sub.add_parser("form-body")
    f.add_argument("--out", required=True)
    g = sub.add_parser("grow")
    g.add_argument("db")
    g.add_argument("--count", type=int, required=True)
    c = sub.add_parser("checkpoint")
    c.add_argument("db")
    args = parser.parse_args()

    if args.command == "checkpoint":
        db = sqlite3.connect(args.db)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    elif args.command == "seed":
        ids = seed(args.port, args.count, args.views)
        if args.ids_out:
            with open(args.ids_out, "w") as out:
                out.write("\n".join(map(str, ids)) + "\n")
        print(f"seeded {len(ids)} posts (ids {ids[0]}..{ids[-1]}) and {args.views} views")
    elif args.command == "form-body":
        with open(args.out, "w") as out:
            out.write(form_body(generate(random.Random(7), 0)))
    elif args.command == "grow":
        print(json.dumps(grow(args.db, args.count)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
