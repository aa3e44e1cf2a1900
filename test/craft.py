#!/usr/bin/env python3
"""craft.py - hostile variants of a teleport batch, for the receiver tests.

  craft.py unsigned IN OUT      IN without manifest.sig (OUT is a plain tar)
  craft.py forge IN OUT KEY     manifest.sig replaced by an HMAC made with KEY
  craft.py flip IN OUT          one byte of the first events member flipped
  craft.py dotdot OUT           a tar whose only member is "../x"
  craft.py tarstream OUT N...   a tar stream of files N (paths) under their
                                base names, as tp-load writes for tp-send -

IN may be .tar, .tar.gz or .tar.zst (zstd(1) decompresses). The member
order and every other byte are kept, so only the intended flaw is there.
"""
import gzip
import hashlib
import hmac
import io
import os
import subprocess
import sys
import tarfile


def read_tar(path):
    """The archive's members as (TarInfo, bytes), in order."""
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".zst"):
        raw = subprocess.run(["zstd", "-dc"], input=raw, check=True,
                             stdout=subprocess.PIPE).stdout
    elif path.endswith(".gz"):
        raw = gzip.decompress(raw)
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as t:
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isfile() else b""
            out.append((m, data))
    return out


def write_tar(path, members):
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for m, data in members:
            m.size = len(data)
            t.addfile(m, io.BytesIO(data))


def unsigned(src, dst):
    write_tar(dst, [(m, d) for m, d in read_tar(src) if m.name != "manifest.sig"])


def forge(src, dst, key):
    members = read_tar(src)
    manifest = next(d for m, d in members if m.name == "manifest.json")
    sig = hmac.new(key.encode(), manifest, hashlib.sha256).hexdigest() + "\n"
    write_tar(dst, [(m, sig.encode() if m.name == "manifest.sig" else d)
                    for m, d in members])


def flip(src, dst):
    members = read_tar(src)
    for i, (m, d) in enumerate(members):
        if m.name.startswith("events-") and d:
            b = bytearray(d)
            b[len(b) // 2] ^= 0x01
            members[i] = (m, bytes(b))
            break
    write_tar(dst, members)


def dotdot(dst):
    m = tarfile.TarInfo("../x")
    write_tar(dst, [(m, b"escaped\n")])


def tarstream(dst, files):
    members = []
    for f in files:
        m = tarfile.TarInfo(os.path.basename(f))
        m.mode = 0o644
        with open(f, "rb") as fh:
            members.append((m, fh.read()))
    write_tar(dst, members)


def main(argv):
    mode, args = argv[1], argv[2:]
    if mode == "unsigned":
        unsigned(*args)
    elif mode == "forge":
        forge(*args)
    elif mode == "flip":
        flip(*args)
    elif mode == "dotdot":
        dotdot(*args)
    elif mode == "tarstream":
        tarstream(args[0], args[1:])
    else:
        sys.exit("craft.py: unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
