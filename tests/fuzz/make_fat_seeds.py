#!/usr/bin/env python3
"""make_fat_seeds.py OUTDIR — the seed corpus for fuzz_fat, made fresh by
tests/fuzz/run.sh (no binary image is kept in the repository).

Seeds are small real volumes, so the fuzzer starts from what the backend
reads in the wild rather than from bytes it must first discover a boot
sector in:
  - FAT12 and FAT16 made by mkfs.fat and filled by mcopy (mtools) with a
    tree of long, UTF-8 (outside Latin-1 too: surrogate pairs), 8.3
    lower-case and upper-case names, nested and empty directories, a
    directory spanning several clusters, and a file fragmented by deleting
    and re-copying;
  - FAT32 made by mkfs.fat, small (mtools will not write a FAT32 with
    fewer than 65525 clusters, and one with that many holds a 256 KiB
    FAT: far past -max_len), filled by add_tree() below: a minimal FAT32
    writer, chains, long-name slots, "." and "..";
  - the same volumes behind an MBR (two primary partitions and a logical
    one in an extended partition) and behind a GPT (CRCs computed here).
A FAT16 volume needs 4085 clusters, about 2 MiB: its image is cut after
the last sector that is not zero, which the backend accepts (clusters
past the end fail to read, cleanly), so it stays under MAX_LEN. A tool
that is missing only costs its seeds (said on stderr).
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

MAX_LEN = 131072  # tests/fuzz/run.sh's -max_len for fuzz_fat


def write(out, name, data):
    if len(data) > MAX_LEN:
        print(f"fat seeds: {name} is {len(data)} bytes, over {MAX_LEN}: left out", file=sys.stderr)
        return
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def trim(img, sector=512):
    """IMG without its trailing zero sectors (a whole sector at least)."""
    end = len(img)
    while end > sector and not any(img[end - sector:end]):
        end -= sector
    return bytes(img[:end])


# The tree every tool-made seed holds: names the short-name, long-name and
# case-folding code all see. Values are small so images stay small.
TREE = {
    "README.TXT": b"upper-case 8.3 name\n",
    "readme.md": b"lower-case 8.3 name: NT flags\n",
    "Mixed Case Long Name.text": b"long\n" * 30,
    "Données été.txt": b"Latin-1 in a long name\n",
    "Ελληνικά.txt": b"Greek\n",
    "😀 emoji.bin": bytes(range(256)) * 3,
    "d/sub/deep.txt": b"x" * 1025,
    "d/empty": b"",
    "d/Straße": b"eszett\n",
}
EMPTY_DIRS = ["empty-dir"]
MANY = [f"many/file-{i:02d}.txt" for i in range(20)]  # spans directory clusters


def make_tree(root):
    for name, data in TREE.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    for d in EMPTY_DIRS:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for i, name in enumerate(MANY):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"%d\n" % i)


def run(*cmd, **kw):
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                   **kw)


def mkfs(path, kib, *opts):
    if os.path.exists(path):
        os.unlink(path)
    run("mkfs.fat", "-C", *opts, "-i", "4b565230", path, str(kib))


def mtools_volume(tmp, name, kib, opts, tree, fragment=False):
    """An image of KIB KiB made by mkfs.fat OPTS, filled by mcopy."""
    img = os.path.join(tmp, name)
    mkfs(img, kib, *opts)
    entries = sorted(os.listdir(tree))
    run("mcopy", "-s", "-i", img, *[os.path.join(tree, e) for e in entries], "::")
    if fragment:
        # A file between two others deleted, and a longer one copied in:
        # mtools fills the gap first, so the new file's chain jumps.
        big = os.path.join(tmp, "frag-src")
        with open(big, "wb") as f:
            f.write(bytes((i * 7 + 3) & 0xFF for i in range(3000)))
        run("mdel", "-i", img, "::/Mixed Case Long Name.text")
        run("mcopy", "-i", img, big, "::/fragmented.bin")
    with open(img, "rb") as f:
        return bytearray(f.read())


# ------------------------------------------------------------ FAT32 writer


class Fat32:
    """Just enough of a FAT32 writer for seeds: files and directories with
    long names, clusters handed out in order, every FAT copy updated."""

    def __init__(self, img):
        self.img = img
        ss, spc, res, nfats = struct.unpack_from("<HBHB", img, 11)
        self.ss, self.cs = ss, ss * spc
        fat_sectors = struct.unpack_from("<I", img, 36)[0]
        self.fats = [(res + k * fat_sectors) * ss for k in range(nfats)]
        self.data = (res + nfats * fat_sectors) * ss
        self.root = struct.unpack_from("<I", img, 44)[0]
        self.next = self.root + 1
        self.fill = {self.root: 0}  # first cluster of a directory -> entries used
        self.short = 0

    def set(self, c, v):
        for f in self.fats:
            struct.pack_into("<I", self.img, f + 4 * c, v)

    def get(self, c):
        return struct.unpack_from("<I", self.img, self.fats[0] + 4 * c)[0] & 0x0FFFFFFF

    def off(self, c):
        return self.data + (c - 2) * self.cs

    def alloc(self, n):
        first = self.next
        for k in range(n):
            self.set(first + k, first + k + 1 if k + 1 < n else 0x0FFFFFFF)
        self.next += n
        return first

    def chain(self, first):
        c = first
        while c < 0x0FFFFFF8:
            yield c
            c = self.get(c)

    def put_entry(self, d, raw):
        used = self.fill[d]
        per = self.cs // 32
        clusters = list(self.chain(d))
        if used // per == len(clusters):  # the directory grows a cluster
            c = self.alloc(1)
            self.set(clusters[-1], c)
            self.img[self.off(c):self.off(c) + self.cs] = bytes(self.cs)
            clusters.append(c)
        at = self.off(clusters[used // per]) + used % per * 32
        self.img[at:at + 32] = raw
        self.fill[d] = used + 1

    @staticmethod
    def short_entry(name83, attr, first, size):
        return struct.pack("<11sBBBHHHHHHHI", name83, attr, 0, 0, 0x6000, 0x5721, 0x5721,
                           first >> 16, 0x6000, 0x5721, first & 0xFFFF, size)

    def add(self, d, name, attr, first, size):
        self.short += 1
        name83 = b"F%07d   " % self.short
        s = 0
        for b in name83:
            s = (((s & 1) << 7) + (s >> 1) + b) & 0xFF
        units = list(struct.unpack("<%dH" % (len(name.encode("utf-16-le")) // 2),
                                   name.encode("utf-16-le")))
        if len(units) % 13:
            units += [0] + [0xFFFF] * (12 - len(units) % 13)
        slots = [units[i:i + 13] for i in range(0, len(units), 13)]
        for k in range(len(slots), 0, -1):
            u = slots[k - 1]
            raw = struct.pack("<B5HBBB6HH2H", k | (0x40 if k == len(slots) else 0), *u[0:5],
                              0x0F, 0, s, *u[5:11], 0, *u[11:13])
            self.put_entry(d, raw)
        self.put_entry(d, self.short_entry(name83, attr, first, size))

    def file(self, d, name, data):
        n = (len(data) + self.cs - 1) // self.cs
        first = self.alloc(n) if n else 0
        if n:
            self.img[self.off(first):self.off(first) + len(data)] = data
        self.add(d, name, 0x20, first, len(data))

    def mkdir(self, d, name):
        c = self.alloc(1)
        self.img[self.off(c):self.off(c) + self.cs] = bytes(self.cs)
        self.fill[c] = 0
        self.put_entry(c, self.short_entry(b".          ", 0x10, c, 0))
        self.put_entry(c, self.short_entry(b"..         ", 0x10, 0 if d == self.root else d, 0))
        self.add(d, name, 0x10, c, 0)
        return c


def add_tree(fs, tree):
    dirs = {"": fs.root}

    def dir_of(path):
        parent = os.path.dirname(path)
        if path not in dirs:
            dirs[path] = fs.mkdir(dir_of(parent), os.path.basename(path))
        return dirs[path]

    for rel in sorted(list(TREE) + MANY):
        with open(os.path.join(tree, rel), "rb") as f:
            fs.file(dir_of(os.path.dirname(rel)), os.path.basename(rel), f.read())
    for d in EMPTY_DIRS:
        dir_of(d)


# ---------------------------------------------------- partition tables


def mbr_entry(ptype, lba, sectors):
    return struct.pack("<B3sB3sII", 0, b"\0\0\0", ptype, b"\0\0\0", lba, sectors)


def mbr_disk(volumes, logical=True):
    """VOLUMES as primary MBR partitions from 1, the last (if LOGICAL) as
    logical partition 5 in an extended partition (an EBR, then the
    volume)."""
    disk = bytearray(4096)
    entries = []
    for v in volumes[:-1] if logical else volumes:
        lba = len(disk) // 512
        entries.append(mbr_entry(0x01, lba, len(v) // 512))
        disk += v
    if not logical:
        disk[446:446 + 16 * len(entries)] = b"".join(entries)
        disk[510:512] = b"\x55\xaa"
        return bytes(disk)
    ext = len(disk) // 512
    ebr = bytearray(512)
    ebr[446:462] = mbr_entry(0x01, 8, len(volumes[-1]) // 512)
    ebr[510:512] = b"\x55\xaa"
    disk += ebr + bytes(7 * 512) + volumes[-1]
    entries.append(mbr_entry(0x05, ext, len(disk) // 512 - ext))
    disk[446:446 + 16 * len(entries)] = b"".join(entries)
    disk[510:512] = b"\x55\xaa"
    return bytes(disk)


BASIC_DATA = bytes.fromhex("a2a0d0ebe5b9334487c068b6b72699c7")


def gpt_disk(volume):
    """VOLUME as partition 1 of a GPT disk: protective MBR, header at LBA
    1, four entries at LBA 2, the volume at LBA 8; no backup header (the
    backend does not read it)."""
    first = 8
    last = first + len(volume) // 512 - 1
    mbr = bytearray(512)
    mbr[446:462] = mbr_entry(0xEE, 1, last)
    mbr[510:512] = b"\x55\xaa"
    entries = bytearray(4 * 128)
    entries[0:128] = (BASIC_DATA + bytes(range(16)) + struct.pack("<QQQ", first, last, 0) +
                      "kvro".encode("utf-16-le").ljust(72, b"\0"))
    hdr = bytearray(struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, 1, last + 1,
                                first, last, bytes(range(16, 32)), 2, 4, 128,
                                zlib.crc32(entries)))
    struct.pack_into("<I", hdr, 16, zlib.crc32(hdr))
    disk = mbr + hdr.ljust(512, b"\0") + entries + bytes(512 * (first - 3)) + volume
    return bytes(disk)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="kvro-fat-seeds-")
    try:
        tree = os.path.join(tmp, "tree")
        make_tree(tree)
        small = {}
        try:
            small[12] = mtools_volume(tmp, "fat12.img", 64, ["-F", "12", "-s", "1", "-r", "32"],
                                      tree)
            write(out, "fat12.img", small[12])
            write(out, "fat12-frag.img",
                  trim(mtools_volume(tmp, "frag.img", 64, ["-F", "12", "-s", "1", "-r", "16"],
                                     tree, fragment=True)))
            # 2 KiB clusters, two FATs: other shifts and multiples.
            write(out, "fat12-2k.img",
                  trim(mtools_volume(tmp, "fat12-2k.img", 96, ["-F", "12", "-s", "4", "-r",
                                                                  "64"], tree)))
            write(out, "fat16.img",
                  trim(mtools_volume(tmp, "fat16.img", 2200, ["-F", "16", "-s", "1", "-f", "1",
                                                                "-r", "16"], tree)))
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"fat seeds: mkfs.fat/mcopy failed ({e}): tool-made seeds left out",
                  file=sys.stderr)
        try:
            img = os.path.join(tmp, "fat32.img")
            mkfs(img, 300, "-F", "32", "-s", "1", "-f", "1", "-R", "2")
            with open(img, "rb") as f:
                v32 = bytearray(f.read())
            add_tree(Fat32(v32), tree)
            write(out, "fat32.img", trim(v32))
            small[32] = v32
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"fat seeds: FAT32 left out ({e})", file=sys.stderr)
        try:
            vols = []
            for k in range(3):
                img = os.path.join(tmp, f"part{k}.img")
                mkfs(img, 40, "-F", "12", "-s", "1", "-r", "16", "-f", "1")
                names = sorted(os.listdir(tree))[k::3]
                run("mcopy", "-s", "-i", img, *[os.path.join(tree, e) for e in names], "::")
                with open(img, "rb") as f:
                    vols.append(f.read())
            write(out, "mbr.img", mbr_disk(vols))
            write(out, "mbr-one.img", mbr_disk(vols[:1], logical=False))
            write(out, "gpt.img", gpt_disk(vols[0]))
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"fat seeds: partitioned seeds left out ({e})", file=sys.stderr)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
