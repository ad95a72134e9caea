#!/usr/bin/env python3
"""Seed the app_* fuzz corpora from the shared pcaps.

Usage: fuzz/seed_applayer.py [DATA_DIR]   (default: $KHIEN_DATA or ../shared/data)

For each TCP/UDP flow on a well-known port it writes one corpus file per flow into
fuzz/corpus/app_<proto>/ in the targets' input format: a mode byte, then for every
payload (in capture order, retransmissions dropped) chunks of at most 64 bytes, each
preceded by a control byte (bit 7: direction, bits 0-5: length - 1).
"""
import hashlib
import os
import struct
import sys

PORTS = {80: "http", 8080: "http", 53: "dns", 443: "tls", 22: "ssh", 25: "smtp", 587: "smtp", 21: "ftp", 445: "smb", 139: "smb", 2049: "nfs"}
MAX_FLOWS = 200  # per protocol
MAX_BYTES = 64 * 1024  # per seed


def packets(path):
    with open(path, "rb") as f:
        gh = f.read(24)
        magic = struct.unpack("<I", gh[:4])[0]
        e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        link = struct.unpack(e + "I", gh[20:24])[0]
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            _, _, caplen, _ = struct.unpack(e + "IIII", h)
            yield link, f.read(caplen)


def l4(link, d):
    if len(d) < 20:
        return None
    if link == 1:
        et, off = struct.unpack(">H", d[12:14])[0], 14
        while et == 0x8100 and len(d) >= off + 4:
            et, off = struct.unpack(">H", d[off + 2:off + 4])[0], off + 4
    elif link == 113:
        et, off = struct.unpack(">H", d[14:16])[0], 16
    elif link in (101, 228):
        et, off = (0x86DD if d and d[0] >> 4 == 6 else 0x800), 0
    else:
        return None
    if et == 0x800 and len(d) >= off + 20:
        ihl = (d[off] & 15) * 4
        tl = struct.unpack(">H", d[off + 2:off + 4])[0]
        return d[off + 9], d[off + 12:off + 16], d[off + 16:off + 20], d[off + ihl:off + tl]
    if et == 0x86DD and len(d) >= off + 40:
        return d[off + 6], d[off + 8:off + 24], d[off + 24:off + 40], d[off + 40:]
    return None


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KHIEN_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    pcaps = sorted(os.path.join(data, "pcaps", p) for p in os.listdir(os.path.join(data, "pcaps")) if p.endswith(".pcap"))
    flows = {}
    for pcap in pcaps:
        for link, d in packets(pcap):
            try:
                r = l4(link, d)
            except struct.error:
                r = None
            if r is None or r[0] not in (6, 17) or len(r[3]) < 8:
                continue
            proto, src, dst, seg = r
            if proto == 6 and len(seg) < 20:
                continue
            sp, dp = struct.unpack(">HH", seg[:4])
            if proto == 6:
                off = (seg[12] >> 4) * 4 if len(seg) > 12 else 20
                seq, payload = struct.unpack(">I", seg[4:8])[0], seg[off:]
            else:
                seq, payload = None, seg[8:]
            if not payload:
                continue
            if dp in PORTS:
                key, direction, name = (src, sp, dst, dp, proto), 0, PORTS[dp]
            elif sp in PORTS:
                key, direction, name = (dst, dp, src, sp, proto), 1, PORTS[sp]
            else:
                continue
            fl = flows.setdefault(key, {"name": name, "udp": proto == 17, "seen": set(), "out": bytearray()})
            if seq is not None:
                if (direction, seq) in fl["seen"]:
                    continue
                fl["seen"].add((direction, seq))
            for i in range(0, len(payload), 64):
                chunk = payload[i:i + 64]
                if len(fl["out"]) + len(chunk) + 1 > MAX_BYTES:
                    break
                fl["out"].append(direction << 7 | (len(chunk) - 1))
                fl["out"] += chunk
    counts = {}
    for fl in flows.values():
        name = fl["name"]
        if counts.get(name, 0) >= MAX_FLOWS or not fl["out"]:
            continue
        counts[name] = counts.get(name, 0) + 1
        mode = 2 if fl["udp"] else 0
        seed = bytes([mode]) + bytes(fl["out"])
        d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "app_" + name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, hashlib.sha1(seed).hexdigest()), "wb") as f:
            f.write(seed)
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
