#!/usr/bin/python3
"""Client side of the metrics tests against a real vifd.

  metrics_client.py scrape (--unix PATH | --tcp HOST:PORT) [--openmetrics]
      GET /metrics, check status and Content-Type, parse the body with
      prometheus_client (the classic or the OpenMetrics parser), print it.
  metrics_client.py compare SCRAPE STATS_BEFORE STATS_AFTER
      every per-queue counter of the scrape lies between the two
      `vifctl stats --json` snapshots taken around it; every vif carried
      traffic both ways.
  metrics_client.py hostile --unix PATH --control PATH
      misbehaving clients on the endpoint while the control socket is timed.
  metrics_client.py control --control PATH JSON
      one control-socket request; prints the answer.

Exits non-zero with a FAIL line on the first failed check.
"""

import argparse
import json
import socket
import sys
import time

from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client import parser as text_parser

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT = "text/plain; version=0.0.4; charset=utf-8"


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def connect(args_unix=None, args_tcp=None, timeout=10.0):
    if args_unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(args_unix)
        return sock
    host, _, port = args_tcp.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect((host, int(port)))
    return sock


def read_to_end(sock):
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def http_get(sock, accept=None, raw=None):
    request = raw if raw is not None else (
        "GET /metrics HTTP/1.1\r\nHost: vifd\r\n" + (f"Accept: {accept}\r\n" if accept else "") + "\r\n"
    ).encode()
    sock.sendall(request)
    response = read_to_end(sock)
    sock.close()
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        fail(f"not an HTTP/1.1 response: {response[:80]!r}")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers and int(headers["content-length"]) != len(body):
        fail(f"Content-Length {headers['content-length']} but {len(body)} bytes of body")
    return status, headers, body.decode("utf-8")


def scrape(args):
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5" \
        if args.openmetrics else None
    status, headers, body = http_get(connect(args.unix, args.tcp), accept)
    if status != 200:
        fail(f"status {status}")
    want = OPENMETRICS if args.openmetrics else TEXT
    if headers.get("content-type") != want:
        fail(f"Content-Type {headers.get('content-type')!r}, expected {want!r}")
    families = parse(body, args.openmetrics)
    if not any(f.name.startswith("vifd_queue_tx_packets") for f in families):
        fail("no vifd_queue_tx_packets family")
    sys.stdout.write(body)


def parse(body, openmetrics):
    try:
        if openmetrics:
            if not body.endswith("# EOF\n"):
                fail("OpenMetrics body does not end with # EOF")
            return list(openmetrics_parser.text_string_to_metric_families(body))
        return list(text_parser.text_string_to_metric_families(body))
    except ValueError as error:
        fail(f"the exposition does not parse: {error}")


# (metric family name in the scrape, path in a queue's JSON)
QUEUE_COUNTERS = [
    ("vifd_queue_tx_packets", ("tx", "packets")),
    ("vifd_queue_tx_bytes", ("tx", "bytes")),
    ("vifd_queue_rx_packets", ("rx", "packets")),
    ("vifd_queue_rx_bytes", ("rx", "bytes")),
    ("vifd_queue_grant_copy_calls", ("grant_copy", "calls")),
    ("vifd_queue_grant_copy_segments", ("grant_copy", "segments")),
    ("vifd_queue_notifications_sent", ("notifications", "sent")),
    ("vifd_queue_notifications_received", ("notifications", "received")),
    ("vifd_queue_switch_forwarded_packets", ("switch", "forwarded_packets")),
    ("vifd_queue_tap_writes", ("tap", "writes")),
    ("vifd_queue_rx_stalls", ("rx_stalls",)),
]


def json_counter(queue, path):
    node = queue
    for step in path:
        node = node.get(step, 0) if isinstance(node, dict) else 0
    return node if isinstance(node, int) else 0


def queues_by_key(stats):
    result = {}
    for vif in stats["vifs"]:
        for queue in vif["queues"]:
            result[(str(vif["domid"]), str(vif["devid"]), str(queue["index"]))] = queue
    return result


def compare(args):
    with open(args.scrape, encoding="utf-8") as f:
        body = f.read()
    with open(args.before, encoding="utf-8") as f:
        before = queues_by_key(json.load(f))
    with open(args.after, encoding="utf-8") as f:
        after_stats = json.load(f)
    after = queues_by_key(after_stats)
    samples = {}
    for family in parse(body, body.endswith("# EOF\n")):
        for sample in family.samples:
            samples.setdefault(family.name, []).append(sample)
    if not before or set(before) != set(after):
        fail(f"the queues changed between the snapshots: {sorted(before)} vs {sorted(after)}")
    checked = 0
    for name, path in QUEUE_COUNTERS:
        series = {(s.labels["domain"], s.labels["devid"], s.labels["queue"]): s.value
                  for s in samples.get(name, []) if s.name == name + "_total"}
        if set(series) != set(after):
            fail(f"{name}: series for {sorted(series)}, queues are {sorted(after)}")
        for key, value in series.items():
            low, high = json_counter(before[key], path), json_counter(after[key], path)
            if not low <= value <= high:
                fail(f"{name}{key} = {value}, vifctl stats --json said {low} before and {high} after")
            checked += 1
    drops = [s for s in samples.get("vifd_queue_drops", []) if s.name == "vifd_queue_drops_total"]
    reasons = {s.labels["reason"] for s in drops}
    if len(drops) != len(after) * len(reasons) or len(reasons) < 20:
        fail(f"vifd_queue_drops: {len(drops)} series, {len(reasons)} reasons for {len(after)} queues")
    for sample in drops:
        key = (sample.labels["domain"], sample.labels["devid"], sample.labels["queue"])
        low = before[key].get("drops", {}).get(sample.labels["reason"], 0)
        high = after[key].get("drops", {}).get(sample.labels["reason"], 0)
        if not low <= sample.value <= high:
            fail(f"drops{key} {sample.labels['reason']} = {sample.value}, stats said {low}..{high}")
    for vif in after_stats["vifs"]:
        if vif["state"] != "Connected":
            fail(f"vif {vif['domid']}/{vif['devid']} is {vif['state']}")
        for direction in ("tx", "rx"):
            if sum(q[direction]["packets"] for q in vif["queues"]) == 0:
                fail(f"vif {vif['domid']}/{vif['devid']} carried no {direction} traffic")
    states = {(s.labels["domain"], s.labels["devid"]): s.value
              for s in samples.get("vifd_vif_state", [])}
    if sorted(states.values()) != [4.0] * len(after_stats["vifs"]):
        fail(f"vifd_vif_state: {states}")
    bridges = {s.labels["bridge"] for s in samples.get("vifd_vif_state", [])}
    if bridges != {"xenbr0"}:
        fail(f"bridge labels {bridges}")
    print(f"{checked} per-queue counters and {len(drops)} drop series match vifctl stats --json")


def control_request(path, request, timeout=5.0):
    sock = connect(path, timeout=timeout)
    sock.sendall((json.dumps(request) + "\n").encode())
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return json.loads(data)


def control_latency(path):
    start = time.monotonic()
    answer = control_request(path, {"command": "stats"})
    if not answer.get("ok"):
        fail(f"control socket: {answer}")
    return time.monotonic() - start


# What "promptly" means for the control socket on a shared two-CPU machine;
# a thread held by a client would make it wait a whole timeout (5-10 s).
PROMPT = 1.0


def assert_prompt(args, during):
    latency = control_latency(args.control)
    if latency > PROMPT:
        fail(f"control socket took {latency:.2f} s while {during}")
    return latency


def hostile(args):
    # 1. A request head that never ends grows past the 8 KiB bound.
    sock = connect(args.unix)
    try:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Filler: " + b"a" * (64 * 1024))
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = read_to_end(sock)
    if not response.startswith(b"HTTP/1.1 431 "):
        fail(f"oversized request answered {response[:40]!r}")
    print("oversized request: 431, closed")

    # 2. Clients that connect and never send; 3. a flood of them.
    silent = [connect(args.unix, timeout=15) for _ in range(100)]
    assert_prompt(args, "100 silent connections were open")
    status, _, body = http_get(connect(args.unix))
    if status != 200 or "vifd_queue_tx_packets" not in body:
        fail(f"scrape during the flood: status {status}")
    start = time.monotonic()
    survivor = silent[-1]  # among the newest: not evicted, closed by the read timeout
    if read_to_end(survivor) != b"":
        fail("a silent client got an answer")
    waited = time.monotonic() - start
    if not 3.0 <= waited <= 8.0:
        fail(f"a silent client was closed after {waited:.1f} s, expected the 5 s read timeout")
    for sock in silent:
        sock.close()
    print(f"100 silent clients: scrape served, control socket prompt, idle closed after {waited:.1f} s")

    # 4. Clients that ask and never read the answer.
    stalled = []
    for _ in range(20):
        sock = connect(args.unix)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        stalled.append(sock)
    for _ in range(5):
        assert_prompt(args, "20 clients did not read their answers")
        time.sleep(0.2)
    status, _, _ = http_get(connect(args.unix))
    if status != 200:
        fail(f"scrape next to non-reading clients: status {status}")
    for sock in stalled:
        sock.close()
    print("20 non-reading clients: control socket prompt, scrapes served")

    counters = control_request(args.control, {"command": "stats"}).get("metrics_endpoint", {})
    if counters.get("bad_requests", 0) < 1 or counters.get("connections_evicted", 0) < 80 or \
            counters.get("timeouts", 0) < 1:
        fail(f"metrics_endpoint counters {counters}")
    print(f"metrics_endpoint counters: {counters}")


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("scrape")
    p.add_argument("--unix")
    p.add_argument("--tcp")
    p.add_argument("--openmetrics", action="store_true")
    p = sub.add_parser("compare")
    p.add_argument("scrape")
    p.add_argument("before")
    p.add_argument("after")
    p = sub.add_parser("hostile")
    p.add_argument("--unix", required=True)
    p.add_argument("--control", required=True)
    p = sub.add_parser("control")
    p.add_argument("--control", required=True)
    p.add_argument("request")
    args = parser.parse_args()
    if args.command == "scrape":
        scrape(args)
    elif args.command == "compare":
        compare(args)
    elif args.command == "hostile":
        hostile(args)
    else:
        print(json.dumps(control_request(args.control, json.loads(args.request))))


if __name__ == "__main__":
    main()
