"""Benchmark of rendering one email (issue: hardening, render limits), in process.

Prints microseconds of CPU per render of typical emails, for this tree and, side
by side in the same run, for another commit (``--against``, default the commit
before the render limits): that tree is extracted with ``git archive`` and the
same measurement runs on it in a subprocess. Also, with ``--ipc``, what rendering
in a long-lived subprocess (the other way to bound a render, by RLIMIT_AS and
RLIMIT_CPU) would add per email: the round trip of the template and context out
and the rendered email back over a pipe, the render itself included.

Run: ``.venv/bin/python -m bench.render [--samples 3000] [--against REV] [--ipc]``
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pipe, Process
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "454329a"  # the last commit before the render limits

PARAGRAPH = ("<p>Our spring collection is here, {{ subscriber.first_name }}: linen shirts, light jackets and the "
             "sandals you asked for last year. Free returns for thirty days, as always — and members get "
             "early access to the sale.</p>\n")
NEWSLETTER = ("<html><body>\n<h1>Hello {{ subscriber.first_name }}</h1>\n" + PARAGRAPH * 4
              + '<p><a href="https://shop.example.test/spring?utm=mail">See the collection</a> · '
                '<a href="https://shop.example.test/sale">Sale</a> · '
                '<a href="https://shop.example.test/account">Your account</a></p>\n'
              + PARAGRAPH * 4 + "</body></html>\n")
# The same size, with the constructs the limits wrap: filters, ~, a loop, a join, a format.
PERSONAL = ("<html><body>\n<h1>Hello {{ subscriber.first_name|default('there')|title }}</h1>\n" + PARAGRAPH * 3
            + "<ul>{% for tag in subscriber.tags %}<li>{{ loop.index ~ '. ' ~ tag|upper }}</li>{% endfor %}</ul>\n"
              "<p>Your plan: {{ subscriber.attributes.plan|default('free') }} · tags: "
              "{{ subscriber.tags|join(', ') }} · {{ '%d items'|format(subscriber.tags|length) }}</p>\n"
            + PARAGRAPH * 4 + "</body></html>\n")
TEXT = "Hi {{ subscriber.first_name }},\n\n" + "Spring is here: linen shirts and light jackets.\n" * 10
CASES = [
    ("newsletter: subject + HTML + derived text", "Spring is here, {{ subscriber.first_name }}", NEWSLETTER, None),
    ("filters, ~, loop, join, format: same parts", "{{ subscriber.first_name|title }}, {{ 'spring' ~ '!' }}",
     PERSONAL, None),
    ("plain text email: subject + text", "Spring is here, {{ subscriber.first_name }}", None, TEXT),
]
CONTEXT = {"subscriber": {"id": 1, "first_name": "reader", "last_name": "", "email": "reader1@example.test",
                          "timezone": None, "attributes": {"plan": "pro"}, "tags": ["news", "spring", "vip"]},
           "unsubscribe_url": "x"}


def measure(samples: int) -> dict[str, float]:
    """µs of CPU per render_email call for each case, in this process's tree."""
    from content.render import render_email

    costs = {}
    for label, subject, html, text in CASES:
        render_email(subject, html, text, CONTEXT)  # compiled and derived once, as a worker does
        started = time.process_time()
        for _ in range(samples):
            render_email(subject, html, text, CONTEXT)
        costs[label] = (time.process_time() - started) / samples * 1e6
    return costs


def measure_at(rev: str, samples: int) -> dict[str, float]:
    """The same measurement on the tree of commit ``rev``."""
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        (Path(tree) / "bench" / "render.py").write_text((ROOT / "bench" / "render.py").read_text())
        out = subprocess.run([sys.executable, "-m", "bench.render", "--json", "--samples", str(samples)], cwd=tree,
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _render_server(conn: Connection) -> None:
    from content.render import render_email

    while True:
        request = conn.recv()
        if request is None:
            return
        rendered = render_email(*request)
        conn.send((rendered.subject, rendered.html, rendered.text))


def measure_ipc(samples: int) -> dict[str, float]:
    """Wall µs per email rendered through a pipe (this process's time and the child's)."""
    ours, theirs = Pipe()
    child = Process(target=_render_server, args=(theirs,), daemon=True)
    child.start()
    costs = {}
    for label, subject, html, text in CASES:
        ours.send((subject, html, text, CONTEXT))
        ours.recv()
        started_wall = time.perf_counter()
        for _ in range(samples):
            ours.send((subject, html, text, CONTEXT))
            ours.recv()
        costs[label] = (time.perf_counter() - started_wall) / samples * 1e6
    ours.send(None)
    child.join()
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="renders per case")
    parser.add_argument("--against", default=BASELINE, help="the commit to compare with (git rev)")
    parser.add_argument("--ipc", action="store_true", help="also render through a subprocess over a pipe")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path.cwd()))
    if args.json:
        print(json.dumps(measure(args.samples)))
        return
    before = measure_at(args.against, args.samples)
    now = measure(args.samples)
    ipc = measure_ipc(args.samples) if args.ipc else {}
    header = f"{'µs per render_email':46} {args.against[:10]:>10} {'this tree':>10}" + (
        f" {'via pipe':>10}" if ipc else "")
    print(header)
    for label, *_ in CASES:
        row: list[Any] = [f"{before[label]:10.1f}", f"{now[label]:10.1f}"]
        if ipc:
            row.append(f"{ipc[label]:10.1f}")
        print(f"{label:46} " + " ".join(row))
    if ipc:
        print("(via pipe: wall µs per email through one long-lived child rendering with this tree)")


if __name__ == "__main__":
    main()
