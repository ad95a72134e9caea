#!/usr/bin/env python3
"""Parity harness: run Suricata 7 and `khien sensor` on the same pcap and compare their EVE.

Usage: scripts/parity.py [--khien BIN] [--suricata BIN] [--out DIR] [--show N] PCAP...

For each pcap, runs
  suricata -r PCAP -l OUT/suricata -k none --runmode single -c scripts/parity/suricata.yaml -S /dev/null
  khien sensor -r PCAP -l OUT/khien -k none
and compares records per event type by key (a multiset match):
  flow      (proto, endpoints)                   endpoints = the two ip:port, sorted
  http      (flow, method, hostname, url, status)
  dns       (flow, type, rrname, rrtype, rcode)
  tls       (flow, sni, version, ja3 hash)
  fileinfo  (flow, sha256); fileinfo* the same restricted to http, smtp, ftp-data and smb files
  ssh/smtp/ftp  (flow) counts only
  alert     (signature_id, flow), with --rules DIR (every DIR/*.rules, concatenated into
            OUT/rules.rules and given to both as -S); every alert counts, so a signature
            alerting twice in a flow counts twice
  alert-uniq  the same as distinct (signature_id, flow) pairs: each at most once
Prints per type: Suricata count, khien count, matched, match rate (matched / Suricata) and
extra rate ((khien - matched) / Suricata), then the first mismatches both ways.
Exit status 0 always (a report, not a test); --json writes the numbers for tests/benches.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SURI_CONF = os.path.join(ROOT, "scripts", "parity", "suricata.yaml")


def flow_of(e):
    """Direction-independent flow identity of a record."""
    a = (e.get("src_ip"), e.get("src_port", 0))
    b = (e.get("dest_ip"), e.get("dest_port", 0))
    lo, hi = sorted([a, b], key=lambda x: (str(x[0]), x[1] or 0))
    return (e.get("proto"), lo, hi)


def key(e):
    t = e.get("event_type")
    f = flow_of(e)
    if t == "flow":
        return f
    if t == "http":
        h = e.get("http", {})
        return (f, h.get("http_method"), h.get("hostname"), h.get("url"), h.get("status"))
    if t == "dns":
        d = e.get("dns", {})
        return (f, d.get("type"), d.get("rrname"), d.get("rrtype"), d.get("rcode"))
    if t == "tls":
        s = e.get("tls", {})
        return (f, s.get("sni"), s.get("version"), (s.get("ja3") or {}).get("hash"))
    if t == "fileinfo":
        return (f, e.get("fileinfo", {}).get("sha256"))
    if t == "alert":
        return (e.get("alert", {}).get("signature_id"), f)
    return f


TYPES = ["flow", "http", "dns", "tls", "fileinfo", "fileinfo*", "ssh", "smtp", "ftp", "anomaly", "alert",
         "alert-uniq"]
# "fileinfo*": fileinfo of the protocols khien parses files from (Suricata also extracts
# files from HTTP/2, which khien parses except Brotli bodies).
FILE_PROTOS = {"http", "smtp", "ftp-data", "smb", "nfs"}


def load(path):
    by = collections.defaultdict(collections.Counter)
    with open(path, encoding="utf-8", errors="replace") as fh:
        records = []
        for line in fh:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    # An app-layer record logged on an ICMP error packet (Suricata attaches ICMP
    # unreachables to the TCP/UDP flow they quote and logs the flow's pending transactions
    # and files on them) carries the ICMP packet's addresses: it is keyed by the flow its
    # flow_id names instead.
    flows = {e.get("flow_id"): e for e in records if e.get("event_type") == "flow"}
    for e in records:
        t = e.get("event_type")
        fl = flows.get(e.get("flow_id"))
        if fl is not None and t not in ("flow", "alert", "anomaly") and e.get("proto") != fl.get("proto"):
            e = dict(e, proto=fl.get("proto"), src_ip=fl.get("src_ip"), dest_ip=fl.get("dest_ip"),
                     src_port=fl.get("src_port"), dest_port=fl.get("dest_port"))
        if t in TYPES:
            by[t][key(e) if t != "anomaly" else (e.get("anomaly", {}).get("event"),)] += 1
        if t == "fileinfo" and e.get("app_proto") in FILE_PROTOS:
            by["fileinfo*"][key(e)] += 1
        if t == "alert":
            by["alert-uniq"][key(e)] = 1
    return by


def run(cmd, cwd=None):
    t0 = time.time()
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}")
    elapsed = None
    for line in p.stdout.splitlines():
        if "time elapsed" in line:
            elapsed = float(line.rsplit(" ", 1)[-1].rstrip("s"))
    return elapsed, time.time() - t0


def compare(s, k, show):
    rows = {}
    for t in TYPES:
        cs, ck = s.get(t, collections.Counter()), k.get(t, collections.Counter())
        ns, nk = sum(cs.values()), sum(ck.values())
        matched = sum(min(n, ck.get(x, 0)) for x, n in cs.items())
        rate = matched / ns if ns else 1.0
        extra = (nk - matched) / ns if ns else (1.0 if nk else 0.0)
        rows[t] = dict(suricata=ns, khien=nk, matched=matched, match_rate=rate, extra_rate=extra)
        print(f"  {t:10} suricata {ns:6}  khien {nk:6}  matched {matched:6}  "
              f"match {100*rate:6.2f}%  extra {100*extra:6.2f}%")
        if show and t != "anomaly":
            miss = [x for x, n in cs.items() if ck.get(x, 0) < n][:show]
            more = [x for x, n in ck.items() if cs.get(x, 0) < n][:show]
            for x in miss:
                print(f"      only suricata: {x}")
            for x in more:
                print(f"      only khien:    {x}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pcaps", nargs="+")
    ap.add_argument("--khien", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/khien-target"), "release", "khien"))
    ap.add_argument("--suricata", default="suricata")
    ap.add_argument("--out", default="/tmp/khien-parity")
    ap.add_argument("--show", type=int, default=3, help="mismatches to print per type and side")
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--reuse-suricata", action="store_true", help="reuse OUT/…/suricata/eve.json if present")
    ap.add_argument("--rules", help="directory of *.rules for both engines (alert comparison)")
    a = ap.parse_args()
    report = {}
    rules = "/dev/null"
    if a.rules:
        os.makedirs(a.out, exist_ok=True)
        rules = os.path.join(a.out, "rules.rules")
        with open(rules, "w", encoding="utf-8") as out:
            for f in sorted(os.listdir(a.rules)):
                if f.endswith(".rules"):
                    with open(os.path.join(a.rules, f), encoding="utf-8", errors="replace") as fh:
                        out.write(fh.read().rstrip("\n") + "\n")
    for pcap in a.pcaps:
        name = os.path.basename(pcap).rsplit(".", 1)[0]
        sdir, kdir = os.path.join(a.out, name, "suricata"), os.path.join(a.out, name, "khien")
        os.makedirs(sdir, exist_ok=True)
        os.makedirs(kdir, exist_ok=True)
        seve = os.path.join(sdir, "eve.json")
        if not (a.reuse_suricata and os.path.exists(seve)):
            if os.path.exists(seve):
                os.remove(seve)
            st, _ = run([a.suricata, "-r", pcap, "-l", sdir, "-k", "none", "--runmode", "single",
                         "-c", SURI_CONF, "-S", rules])
        else:
            st = None
        kt, _ = run([a.khien, "sensor", "-r", pcap, "-l", kdir, "-k", "none"]
                    + (["-S", rules] if a.rules else []) if not a.khien.endswith("sws")
                    else [a.khien, "-r", pcap, "-l", kdir, "-k", "none"])
        print(f"{pcap}: suricata time elapsed {st}s, khien time elapsed {kt}s")
        report[name] = compare(load(seve), load(os.path.join(kdir, "eve.json")), a.show)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
