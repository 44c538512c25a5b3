#!/usr/bin/env python3
"""make_seeds.py OUTDIR — the seed corpus for fuzz_tar, made fresh by
tests/fuzz/run.sh (no binary archive is kept in the repository).

Seeds are small real archives, so the fuzzer starts from every dialect the
backend reads: GNU tar (--format=v7, ustar, oldgnu, gnu, posix, and sparse
files in each of GNU's sparse formats), bsdtar (ustar, pax, v7, gnutar),
Python's tarfile (GNU and pax, long names and link targets, links, devices,
FIFOs), gzip of several of them (one member, concatenated members, a
gzip header with every optional field), and hand-made edge cases a tool
will not write: base-256 numbers, pax records that override or delete,
global headers, GNU 'L'/'K' names, sparse members in every encoding (old
GNU with extension blocks, pax 0.0, 0.1, 1.0 with '#' lines), star
headers, signed checksums, names with '..', end markers and truncation.
Every seed stays under run.sh's -max_len. A tool that is missing or
refuses a format only costs its seeds (said on stderr).
"""
import gzip
import io
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib

MAX_LEN = 65536
MTIME = 1700000000


def write(out, name, data):
    if len(data) > MAX_LEN:
        print(f"seeds: {name} is {len(data)} bytes, over {MAX_LEN}: left out", file=sys.stderr)
        return
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def make_tree(root, long_names=True):
    """A small tree: nested directories, text and binary files, an empty file
    and directory, a symlink, a hard link and (optionally) a name past the
    100 bytes of a plain header."""
    os.makedirs(os.path.join(root, "d/sub/deeper"))
    os.makedirs(os.path.join(root, "empty-dir"))
    files = {
        "a.txt": b"hello, kvro\n" * 20,
        "d/b.bin": bytes((i * 37 + 11) & 0xFF for i in range(1500)),
        "d/sub/c.txt": b"c" * 513,
        "d/sub/deeper/e": b"",
        "z": b"last",
    }
    if long_names:
        files["d/" + "n" * 120 + "/" + "long-file-name-" * 8] = b"long name\n"
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.symlink("../a.txt", os.path.join(root, "d/link"))
    os.symlink("sub", os.path.join(root, "d/dirlink"))
    os.link(os.path.join(root, "a.txt"), os.path.join(root, "hard"))
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (MTIME, MTIME), follow_symlinks=False)


def make_sparse(path):
    """A 1 MiB file with three islands of data: a sparse member in any format."""
    with open(path, "wb") as f:
        f.truncate(1 << 20)
        for off in (0, 300000, (1 << 20) - 700):
            f.seek(off)
            f.write(b"island" * 100)
    os.utime(path, (MTIME, MTIME))


def run(cmd, cwd=None):
    try:
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        return True
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, "stderr", b"") or b""
        print(f"seeds: {' '.join(cmd)} failed: {err.decode(errors='replace').strip()}",
              file=sys.stderr)
        return False


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


def gnu_tar(out, work):
    tree = os.path.join(work, "tree")
    short = os.path.join(work, "short")
    make_tree(tree)
    make_tree(short, long_names=False)
    common = ["--owner=0", "--group=0", "--numeric-owner", "--sort=name",
              f"--mtime=@{MTIME}", "-b", "1"]
    for fmt in ("v7", "ustar", "oldgnu", "gnu", "posix"):
        src = short if fmt in ("v7", "ustar") else tree
        dst = os.path.join(work, f"gnu-{fmt}.tar")
        if run(["tar", f"--format={fmt}", *common, "-cf", dst, "-C", src, "."]):
            write(out, f"gnutar-{fmt}.tar", slurp(dst))
    sp = os.path.join(work, "sp")
    os.makedirs(sp)
    make_sparse(os.path.join(sp, "sparse"))
    variants = [("gnu", []), ("posix", ["--sparse-version=0.0"]),
                ("posix", ["--sparse-version=0.1"]), ("posix", ["--sparse-version=1.0"])]
    for fmt, extra in variants:
        tag = fmt + "".join(x.split("=")[1] for x in extra)
        dst = os.path.join(work, f"sparse-{tag}.tar")
        if run(["tar", f"--format={fmt}", "--sparse", *extra, *common, "-cf", dst, "-C", sp,
                "sparse"]):
            write(out, f"gnutar-sparse-{tag}.tar", slurp(dst))
    return tree, short


def bsd_tar(out, work, tree, short):
    if not shutil.which("bsdtar"):
        print("seeds: bsdtar not found: no bsdtar seeds", file=sys.stderr)
        return
    for fmt in ("ustar", "pax", "v7", "gnutar"):
        src = short if fmt in ("ustar", "v7") else tree
        dst = os.path.join(work, f"bsd-{fmt}.tar")
        if run(["bsdtar", "--format", fmt, "--uid", "0", "--gid", "0", "-cf", dst, "-C", src,
                "."]):
            write(out, f"bsdtar-{fmt}.tar", slurp(dst))


def py_tar(fmt, pax_headers=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax_headers) as t:
        def add(name, type_=tarfile.REGTYPE, data=b"", **kw):
            ti = tarfile.TarInfo(name)
            ti.type = type_
            ti.size = len(data) if type_ in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            ti.mtime = kw.pop("mtime", MTIME)
            for k, v in kw.items():
                setattr(ti, k, v)
            t.addfile(ti, io.BytesIO(data) if ti.size else None)
        add("dir/", tarfile.DIRTYPE, mode=0o755)
        add("dir/file.txt", data=b"python tarfile\n" * 10)
        add("dir/" + "x" * 150 + "/" + "y" * 120, data=b"long path")
        add("dir/symlink", tarfile.SYMTYPE, linkname="file.txt")
        add("dir/longlink", tarfile.SYMTYPE, linkname="../" + "t" * 200)
        add("hardlink", tarfile.LNKTYPE, linkname="dir/file.txt")
        add("dev", tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("fifo", tarfile.FIFOTYPE)
        add("caf\u00e9/\u65e5\u672c", data=b"utf-8 names")
        add("mtime-frac", data=b"x", mtime=MTIME + 0.5)
        add("dir/file.txt", data=b"replaced\n")
    return buf.getvalue()


def python_tar(out):
    write(out, "py-gnu.tar", py_tar(tarfile.GNU_FORMAT))
    write(out, "py-pax.tar", py_tar(tarfile.PAX_FORMAT))
    write(out, "py-pax-global.tar", py_tar(tarfile.PAX_FORMAT, {"comment": "global",
                                                                "mtime": "1.25"}))


# ------------------------------------------------------------- hand-made

def octal(n, width):
    return ("%0*o" % (width - 1, n)).encode() + b"\0"


def base256(n, width):
    b = bytearray(n.to_bytes(width, "big", signed=True))
    b[0] |= 0x80
    return bytes(b)


def header(name, type_=b"0", size=0, link=b"", magic=b"ustar\x0000", size_field=None,
           mode=0o644, prefix=b"", signed_sum=False, extra=None):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = octal(mode, 8)
    h[108:116] = octal(0, 8)
    h[116:124] = octal(0, 8)
    h[124:136] = size_field if size_field is not None else octal(size, 12)
    h[136:148] = octal(MTIME, 12)
    h[156:157] = type_
    h[157:157 + len(link)] = link
    h[257:265] = magic
    h[345:345 + len(prefix)] = prefix
    for off, data in (extra or {}).items():
        h[off:off + len(data)] = data
    h[148:156] = b" " * 8
    s = sum((b - 256 if b > 127 else b) for b in h) if signed_sum else sum(h)
    h[148:156] = ("%06o" % (s & 0o777777)).encode() + b"\0 "
    return bytes(h)


def pad(data):
    return data + b"\0" * (-len(data) % 512)


def member(name, data=b"", **kw):
    return header(name, size=len(data), **kw) + pad(data)


def pax(records, type_=b"x", name=b"PaxHeader"):
    body = b""
    for k, v in records:
        rec = b" " + k + b"=" + v + b"\n"
        n = len(rec) + 1
        while len(str(n)) + len(rec) != n:
            n += 1
        body += str(n).encode() + rec
    return header(name, type_=type_, size=len(body)) + pad(body)


END = b"\0" * 1024

# A sparse file's data regions (offset, length) in a 5000-byte logical file.
SPARSE_MAP = [(10, 5), (100, 1), (4300, 700)]


def sparse_data(regions):
    """The stored bytes of a sparse member: its regions' data, in order."""
    return b"".join(bytes((0x41 + (o + i) % 26) for i in range(n)) for o, n in regions)


def crafted(out):
    seeds = {
        "base256-size.tar": header(b"big", size_field=base256(1000, 12)) + pad(b"b" * 1000)
        + END,
        "base256-negative-mtime.tar": header(b"neg", extra={136: base256(-5, 12)}) + END,
        "base256-huge.tar": header(b"huge", size_field=base256(1 << 62, 12)) + END,
        "pax-size-path.tar": pax([(b"path", b"renamed/by/pax"), (b"size", b"5"),
                                  (b"mtime", b"-1.25"), (b"uid", b"0")])
        + header(b"ignored", size=0) + pad(b"12345") + END,
        "pax-delete.tar": pax([(b"path", b"global-name")], type_=b"g")
        + pax([(b"path", b"")]) + member(b"header-name", b"x")
        + member(b"second", b"y") + END,
        "pax-linkpath.tar": pax([(b"linkpath", b"target/" + b"l" * 150)])
        + header(b"sym", type_=b"2") + member(b"target/" + b"l" * 150, b"t") + END,
        "pax-sparse-keys.tar": pax([(b"GNU.sparse.name", b"sp"), (b"GNU.sparse.size", b"100")])
        + member(b"sp-placeholder", b"z" * 10) + END,
        "gnu-longname.tar": member(b"././@LongLink", b"a/" + b"L" * 300 + b"\0",
                                   type_=b"L", magic=b"ustar  \0")
        + member(b"short", b"data", magic=b"ustar  \0")
        + member(b"././@LongLink", b"../" + b"K" * 200 + b"\0", type_=b"K",
                 magic=b"ustar  \0")
        + header(b"lnk", type_=b"2", magic=b"ustar  \0") + END,
        "gnu-old-sparse-ext.tar":
        header(b"sparse", type_=b"S", size=512, magic=b"ustar  \0",
               extra={386: octal(0, 12) + octal(512, 12), 482: b"\1",
                      483: octal(4096, 12)})
        + pad(bytes(504) + b"\1") + pad(bytes(504)) + pad(b"s" * 512) + END,
        # Sparse members by hand, one per encoding: regions at the start, in
        # the middle and at the end, empty regions as GNU tar ends its maps,
        # '#' lines in a 1.0 map, a 60 GiB logical size, a hard link to one.
        "pax-sparse-00.tar": pax([(b"GNU.sparse.size", b"5000"), (b"GNU.sparse.numblocks", b"3"),
                                  (b"path", b"sp00")]
                                 + [(k, str(v).encode()) for o, n in SPARSE_MAP
                                    for k, v in ((b"GNU.sparse.offset", o),
                                                 (b"GNU.sparse.numbytes", n))])
        + member(b"GNUSparseFile.0/sp00", sparse_data(SPARSE_MAP)) + END,
        "pax-sparse-01.tar": pax([(b"GNU.sparse.size", b"5000"), (b"GNU.sparse.numblocks", b"4"),
                                  (b"GNU.sparse.name", b"sp01"),
                                  (b"GNU.sparse.map",
                                   b",".join(b"%d,%d" % r for r in SPARSE_MAP + [(5000, 0)]))])
        + member(b"GNUSparseFile.0/sp01", sparse_data(SPARSE_MAP))
        + header(b"link-to-sparse", type_=b"1", link=b"sp01") + END,
        "pax-sparse-10.tar": pax([(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"),
                                  (b"GNU.sparse.name", b"sp10"),
                                  (b"GNU.sparse.realsize", b"%d" % (60 << 30))])
        + member(b"GNUSparseFile.0/sp10",
                 pad(b"#!gnu-sparse-format\n#format:1.0\n3\n0\n7\n%d\n0\n%d\n9\n"
                     % (1 << 33, (60 << 30) - 9)) + b"s" * 16) + END,
        "gnu-old-sparse-map.tar":
        header(b"sp-old", type_=b"S", size=706, magic=b"ustar  \0",
               extra=dict([(483, octal(5000, 12))]
                          + [(386 + 24 * i, octal(o, 12) + octal(n, 12))
                             for i, (o, n) in enumerate(SPARSE_MAP)]))
        + pad(sparse_data(SPARSE_MAP)) + END,
        "star.tar": header(b"star-name", prefix=b"star/prefix", extra={508: b"tar\0"})
        + END,
        "ustar-prefix.tar": member(b"name", b"p", prefix=b"a/" + b"p" * 150) + END,
        "signed-checksum.tar": member(b"\xe9t\xe9", b"signed", signed_sum=True) + END,
        "dir-with-size.tar": header(b"d", type_=b"5", size=1024) + member(b"d/f", b"f") + END,
        "dumpdir.tar": member(b"dd", b"Yfile\0\0", type_=b"D", magic=b"ustar  \0") + END,
        "volume-and-multivolume.tar": header(b"label", type_=b"V", magic=b"ustar  \0")
        + member(b"cont", b"m" * 100, type_=b"M", magic=b"ustar  \0") + member(b"ok", b"o")
        + END,
        "one-zero-block.tar": member(b"f", b"x") + b"\0" * 512,
        "no-end-marker.tar": member(b"f", b"x"),
        "truncated-data.tar": header(b"f", size=5000) + b"short",
        "dotdot.tar": member(b"../evil", b"e") + member(b"a/../../x", b"e")
        + header(b"h", type_=b"1", link=b"../evil") + member(b"./", b"", type_=b"5")
        + member(b"./ok", b"ok") + member(b"/abs", b"abs") + END,
        "links.tar": member(b"t", b"target") + header(b"d/", type_=b"5")
        + header(b"d/up", type_=b"2", link=b"..") + header(b"loop", type_=b"2", link=b"loop")
        + header(b"d/rel", type_=b"2", link=b"../t") + header(b"h1", type_=b"1", link=b"t")
        + header(b"h2", type_=b"1", link=b"h1") + header(b"dl", type_=b"2", link=b"d")
        + END,
        "conflict.tar": member(b"a", b"file") + member(b"a/b", b"inside") + END,
        "replace.tar": member(b"x/y", b"1") + header(b"x", type_=b"5") + member(b"x", b"2")
        + END,
        "v7-dir-slash.tar": member(b"olddir/", b"", type_=b"\0", magic=b"\0" * 8)
        + member(b"olddir/f", b"v7", type_=b"\0", magic=b"\0" * 8) + END,
        "unknown-type.tar": member(b"weird", b"w", type_=b"Z") + END,
        "empty.tar": END,
        "hardlink-missing.tar": header(b"h", type_=b"1", link=b"nowhere")
        + header(b"h2", type_=b"1", link=b"d/x") + member(b"d", b"file") + END,
        "too-long-name.tar": member(b"././@LongLink", b"n/" * 2100 + b"f\0", type_=b"L",
                                    magic=b"ustar  \0")
        + member(b"x", b"too long", magic=b"ustar  \0") + member(b"ok", b"ok") + END,
        # The lenient paths (issue 7): a long name with '/' at byte 100, sized
        # header-only types, numeric fields as GNU tar reads them, several
        # 'x' headers, damaged pax records read past, a global path.
        "slash-at-100.tar": member(b"././@LongLink", b"a" * 99 + b"/" + b"b" * 50 + b"\0",
                                   type_=b"L", magic=b"ustar  \0")
        + member(b"a" * 99 + b"/", b"file", magic=b"ustar  \0") + END,
        "header-only-sized.tar": member(b"t", b"target")
        + b"".join(header(n, type_=t, size=1024, link=b"t") + member(b"in" + t, b"i")
                   for n, t in ((b"h", b"1"), (b"s", b"2"), (b"c", b"3"), (b"b", b"4"),
                                (b"d/", b"5"), (b"p", b"6"), (b"o/", b"0"), (b"v/", b"\0")))
        + END,
        "numeric-lenient.tar": member(b"nul", b"12345", extra={124: b"\0" + octal(5, 11)})
        + member(b"aix", b"m", extra={136: b"\x001722000726 "})
        + member(b"junk", b"j", extra={124: b"1\0junk\0\0\0\0\0\0", 100: b"644 zz\0\0"})
        + member(b"zero", b"", extra={124: b"\0" * 7 + b"0016\0"}) + END,
        "pax-multi-x.tar": pax([(b"path", b"first"), (b"mtime", b"1")])
        + pax([(b"path", b"last")]) + member(b"f", b"x") + END,
        "pax-damaged.tar": pax([(b"mtime", b"123.4x"), (b"gid", b"1z")]) + member(b"m", b"m")
        + header(b"PaxHeader", type_=b"x", size=16) + pad(b"12 nokeyval\n4 x=")
        + member(b"n", b"n") + END,
        "pax-global-path.tar": pax([(b"path", b"global"), (b"mtime", b"5")], type_=b"g")
        + member(b"a", b"a") + member(b"b", b"b") + END,
        "deep.tar": pax([(b"path", b"d/" * 90 + b"f")]) + member(b"p", b"deep")
        + header(b"d/" * 40 + b"up", type_=b"2", link=b"../" * 39 + b"d")
        + header(b"top", type_=b"2", link=b"d/" * 30 + b"d") + END,
    }
    for name, data in seeds.items():
        write(out, name, data)
    return seeds


def gzip_header_all_fields(data):
    """A gzip member with FTEXT, FHCRC, FEXTRA, FNAME and FCOMMENT set."""
    flags = 0x01 | 0x02 | 0x04 | 0x08 | 0x10
    head = b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", MTIME) + b"\x00\x03"
    head += struct.pack("<H", 6) + b"AB\x02\x00xy" + b"name.tar\0" + b"comment\0"
    head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = c.compress(data) + c.flush()
    return head + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def gz(out, work, seeds):
    picks = ["links.tar", "pax-size-path.tar", "gnu-longname.tar", "dotdot.tar",
             "pax-sparse-10.tar", "gnu-old-sparse-map.tar"]
    for name in picks:
        write(out, name + ".gz", gzip.compress(seeds[name], mtime=0))
    for name in ("gnutar-gnu.tar", "py-pax.tar", "gnutar-sparse-gnu.tar",
                 "gnutar-sparse-posix0.1.tar", "gnutar-sparse-posix1.0.tar"):
        path = os.path.join(out, name)
        if os.path.exists(path):
            write(out, name + ".gz", gzip.compress(slurp(path), 9, mtime=0))
    data = seeds["links.tar"]
    cut = 700  # inside a header: the tar spans the two gzip members
    write(out, "concatenated.tar.gz",
          gzip.compress(data[:cut], mtime=0) + gzip.compress(data[cut:], mtime=0))
    write(out, "stored-blocks.tar.gz", gzip.compress(seeds["star.tar"], 0, mtime=0))
    write(out, "all-header-fields.tar.gz", gzip_header_all_fields(seeds["ustar-prefix.tar"]))
    write(out, "trailing-garbage.tar.gz", gzip.compress(seeds["links.tar"], mtime=0) + b"junk")
    # Many small deflate blocks (a sync flush every 512 bytes): many block boundaries.
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = b""
    for i in range(0, len(data), 512):
        body += c.compress(data[i:i + 512]) + c.flush(zlib.Z_SYNC_FLUSH)
    write(out, "sync-flushed.tar.gz", body + c.flush())
    # Megabytes that gzip to a few KiB: many access points (fuzz_tar sets a
    # 64 KiB spacing), some with windows that do not compress (a random 32 KiB
    # block repeated: deflate refers back to it, level 1 cannot shrink it),
    # and three gzip members cut inside file data, so reads start at points
    # and cross members.
    rnd = bytes((i * 2654435761 >> 13) & 0xFF for i in range(32768))
    files = (("big1", rnd * 40), ("mid", b"m" * 5000),
             ("big2", bytes((i // 512) & 0x7F for i in range(2 << 20))), ("end", b"e" * 10))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(data), MTIME
            t.addfile(ti, io.BytesIO(data))
    big = buf.getvalue()
    cuts = [0, len(rnd) * 40 + 700, len(rnd) * 40 + 4000, len(big)]
    def small_blocks(data):
        # memLevel 1: a deflate block every 128 symbols, most ending mid-byte.
        c = zlib.compressobj(9, zlib.DEFLATED, 31, 1)
        return c.compress(data) + c.flush()
    write(out, "points.tar.gz", b"".join(small_blocks(big[a:b]) for a, b in zip(cuts, cuts[1:])))
    # Over a thousand members: the index grows its tables.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for i in range(1300):
            ti = tarfile.TarInfo("m/%02d/%04d" % (i % 37, i))
            ti.mtime = MTIME
            t.addfile(ti)
    write(out, "many-members.tar.gz", gzip.compress(buf.getvalue(), 9, mtime=0))
    if shutil.which("bsdtar"):
        dst = os.path.join(work, "bsd.tgz")
        if run(["bsdtar", "-czf", dst, "-C", os.path.join(work, "short"), "."]):
            write(out, "bsdtar.tar.gz", slurp(dst))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kvro-seeds.") as work:
        tree, short = gnu_tar(out, work)
        bsd_tar(out, work, tree, short)
        python_tar(out)
        seeds = crafted(out)
        gz(out, work, seeds)
    print(f"seeds: {len(os.listdir(out))} in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
