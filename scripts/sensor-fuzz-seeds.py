#!/usr/bin/env python3
"""Seeds fuzz/corpus/decode_packet from the shared pcaps (the decode_packet input format:
byte 0 = link type index (0 Ethernet), then packets as big-endian u16 length + bytes).
Usage: scripts/sensor-fuzz-seeds.py [N_PER_PCAP]   (KHIEN_DATA locates the pcaps)"""
import os, random, struct, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data = os.environ.get("KHIEN_DATA", os.path.join(root, "..", "shared", "data"))
out = os.path.join(root, "fuzz", "corpus", "decode_packet")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
os.makedirs(out, exist_ok=True)
random.seed(1)
for name in ["zeek", "sv", "ndpi"]:
    pk = []
    with open(os.path.join(data, "pcaps", f"{name}-corpus-merged.pcap"), "rb") as f:
        f.read(24)
        while (h := f.read(16)) and len(h) == 16:
            _, _, cl, _ = struct.unpack("<IIII", h)
            pk.append(f.read(cl))
    for i in range(n):
        j = random.randrange(len(pk))
        group = pk[j:j + random.choice([1, 1, 2, 4, 8])]
        seed = bytes([0]) + b"".join(struct.pack(">H", len(p[:65535])) + p[:65535] for p in group)
        if len(seed) < 8000:
            with open(os.path.join(out, f"{name}-{i}"), "wb") as o:
                o.write(seed)
print(len(os.listdir(out)), "seeds in", out)
