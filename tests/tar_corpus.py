#!/usr/bin/env python3
"""tar_corpus.py — Python's tarfile's view of tar archives, mapped through
kvro's documented rules, for tests/test_tar_corpus.c.

    python3 tar_corpus.py [--sparse read|unsupported] ARCHIVE...

For each ARCHIVE it prints a section:

    @ ARCHIVE
    L KEY                a link (symbolic or hard): test_tar_corpus.c lists
                         it but does not walk into it (a hint, not compared)
    D KEY                a directory
    F KEY SIZE HASH      a file: its size and the SHA-256 of its bytes (over
                         64 MiB: "ht:" + the SHA-256 of its first and last MiB)
    ! KEY STATUS         a file kvro lists but refuses (sparse members with
                         --sparse unsupported, kvro's rule before it read
                         them: "unsupported")
    X MESSAGE            tarfile itself could not read all of the archive
                         (an error, or it stopped early at a block that is
                         not a header); kvro's view never has such a line
    E tarfile MESSAGE    tarfile refused the archive altogether (the test
                         expects kvro to refuse it as KVRO_E_CORRUPT)
    E corrupt            kvro's rules make the archive malformed (below)
    # NOTE               shown with a failure, never compared

KEYs are normalised as kvro does and escaped as test_tar_corpus.c escapes
them: every byte outside '!'..'~', and '%', as %XX. Lines are in no
particular order (the test sorts both views).

The mapping, every rule of which is kvro's documented behaviour (README,
tar/tar_scan.c, tar/tar_index.c) or GNU tar's where tarfile differs:
  - names: leading '/' and './' dropped, '//' collapsed; a member with a '.'
    or '..' component left, or longer than KVRO_KEY_MAX, is skipped (kvro
    warns); a non-directory named './' is skipped;
  - a later member replaces an earlier one of the same name; parents are
    implied as directories; a member inside a non-directory, or a
    non-directory replacing a directory with members, makes the archive
    corrupt (kvro refuses it; the section is then "E corrupt ..." from this
    model, which the test compares like any other line);
  - types tarfile does not know are read by GNU tar's rules: 'D' (GNU
    dumpdir) is a directory, 'M' (a file continued from another volume) is
    not a file kvro serves, 'V' (volume label), 'N' (old GNU long names),
    'A', 'E', 'I' are not members; any other unknown type is a regular file
    (POSIX, and tarfile too);
  - a regular member ('0' or NUL type) whose name ends in '/' is a
    directory (old tars; GNU tar's extract.c; tarfile does it for NUL only);
  - FIFOs and devices are not listed; symbolic links are resolved as POSIX
    resolves paths inside the archive as a whole tree (relative to the
    link's directory; absolute targets, '..' above the root, more than 40
    links, and a link back to the root or one of its own parent directories
    are not listed); a hard link is what tarfile says it is (the last member
    of that name BEFORE the link); one to nothing is not listed;
  - sparse members: read (the default, kvro's rule since issue #7), their
    logical bytes with holes as zeros, as tarfile extracts them; with
    --sparse unsupported, "! KEY unsupported".
"""
import gzip
import hashlib
import os
import sys
import tarfile

KEY_MAX = 4095
MAX_LINKS = 40
BIG = 64 << 20
MIB = 1 << 20

IGNORED_TYPES = {b"V", b"N", b"A", b"E", b"I"}


def esc(b):
    out = []
    for c in b:
        if c <= 0x20 or c >= 0x7F or c == 0x25:
            out.append("%%%02X" % c)
        else:
            out.append(chr(c))
    return "".join(out)


def raw(s):
    return s.encode("utf-8", "surrogateescape")


def normalise(name):
    """kvro__tar_path_normalise: components, or None for a '.'/'..' one."""
    comps = [c for c in name.split(b"/") if c]
    while comps and comps[0] == b".":
        comps.pop(0)
    if any(c in (b".", b"..") for c in comps):
        return None
    return comps


class Corrupt(Exception):
    pass


class Node:
    __slots__ = ("kind", "size", "hash", "target", "children")

    def __init__(self, kind):
        self.kind = kind  # dir file sparse special symlink hlfile hldir broken
        self.size = 0
        self.hash = None
        self.target = None  # symlink: raw target; hard link to a dir: its path
        self.children = {}


def digest(f, size):
    h = hashlib.sha256()
    if size <= BIG:
        left = size
        while left > 0:
            b = f.read(min(left, MIB))
            if not b:
                raise EOFError("member data ends %d bytes early" % left)
            h.update(b)
            left -= len(b)
        return h.hexdigest()
    head = f.read(MIB)
    f.seek(size - MIB)
    tail = f.read(MIB)
    if len(head) != MIB or len(tail) != MIB:
        raise EOFError("member data ends early")
    h.update(head + tail)
    return "ht:" + h.hexdigest()


class Model:
    def __init__(self, sparse_mode):
        self.root = Node("dir")
        self.sparse_mode = sparse_mode

    def lookup(self, comps):
        n = self.root
        for c in comps:
            if n.kind != "dir" or c not in n.children:
                return None
            n = n.children[c]
        return n

    def add(self, comps, node, shown):
        cur = self.root
        for c in comps[:-1]:
            nxt = cur.children.get(c)
            if nxt is None:
                nxt = cur.children[c] = Node("dir")
            elif nxt.kind != "dir":
                raise Corrupt("member '%s' is inside a %s" % (shown, nxt.kind))
            cur = nxt
        last = comps[-1]
        old = cur.children.get(last)
        if old is not None and old.kind == "dir":
            if node.kind != "dir" and old.children:
                raise Corrupt("member '%s' replaces a directory with members" % shown)
            if node.kind == "dir":
                return  # a directory again: its members stay
        cur.children[last] = node

    # ------------------------------------------------------------ resolving
    def resolve(self, key):
        """What KEY (components) serves, kvro's walk: ('dir', path) |
        ('file', node) | None (missing, loop, outside, not servable)."""
        links = 0
        path = list(key)
        stack = []  # components of the current directory
        ancestors = None  # directories the key passed, once a link was followed
        i = 0
        while i < len(path):
            c = path[i]
            last = i == len(path) - 1
            i += 1
            if c == b".":
                if last:
                    break
                continue
            if c == b"..":
                if not stack:
                    return None
                stack.pop()
                continue
            parent = self.lookup(stack)
            node = parent.children.get(c) if parent is not None else None
            if node is None:
                return None
            if node.kind in ("symlink", "hldir"):
                links += 1
                if links > MAX_LINKS:
                    return None
                if ancestors is None:
                    ancestors = [tuple(key[:k]) for k in range(len(key))]
                t = node.target
                if node.kind == "hldir":
                    rest = list(t) + path[i:]
                    stack = []
                else:
                    if not t or t.startswith(b"/"):
                        return None
                    rest = [x for x in t.split(b"/") if x] + path[i:]
                path, i = rest, 0
                if not path:  # "link -> ." style: ends on the directory
                    break
                continue
            if last:
                if node.kind == "dir":
                    stack.append(c)
                    break
                if node.kind in ("file", "hlfile", "sparse"):
                    return ("file", node)
                return None
            if node.kind != "dir":
                return None
            stack.append(c)
        if ancestors is not None and tuple(stack) in ancestors:
            return None  # a link back to a directory the key passed: a loop
        return ("dir", tuple(stack))

    def dump(self, out):
        def walk(comps, node):
            for name in sorted(node.children):
                child = node.children[name]
                key = comps + [name]
                shown = esc(b"/".join(key))
                if child.kind in ("symlink", "hldir"):
                    out.append("L " + shown)
                r = self.resolve(key)
                if r is None:
                    continue
                if r[0] == "dir":
                    out.append("D " + shown)
                    if child.kind == "dir":
                        walk(key, child)
                    continue
                f = r[1]
                if f.kind == "sparse" and self.sparse_mode == "unsupported":
                    out.append("! %s unsupported" % shown)
                elif f.hash is None:
                    out.append("! %s tarfile-could-not-read" % shown)
                else:
                    out.append("F %s %d %s" % (shown, f.size, f.hash))

        walk([], self.root)


def stop_reason(path, offset):
    """Why tarfile stopped at OFFSET: None at the end (EOF, a zero block),
    else a message (tarfile stops silently at a block that is not a valid
    header anywhere but at offset 0)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            f.seek(offset)
            blk = f.read(512)
    except (OSError, EOFError) as e:
        return "tarfile stopped at offset %d and the archive does not read on: %s" % (offset, e)
    if len(blk) == 0 or blk == bytes(512):
        return None
    if len(blk) < 512:
        return "tarfile stopped at offset %d: a truncated header (%d bytes)" % (offset, len(blk))
    return "tarfile stopped at offset %d: the block there is not a valid header" % offset


def one(path, sparse_mode, out):
    try:
        tf = tarfile.open(path, "r:*", encoding="utf-8", errors="surrogateescape")
    except Exception as e:  # noqa: BLE001 - any refusal is the answer
        out.append("E tarfile %s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
        return
    with tf:
        members = []
        err = None
        try:
            while True:
                m = tf.next()
                if m is None:
                    break
                members.append(m)
        except Exception as e:  # noqa: BLE001
            err = "tarfile: %s: %s" % (type(e).__name__, str(e).replace("\n", " "))
        if err is None:
            reason = stop_reason(path, tf.offset)
            if reason:
                err = reason
        if err:
            out.append("X " + err)
        model = Model(sparse_mode)
        try:
            for m in members:
                add_member(tf, model, m)
        except Corrupt as e:
            out[:] = [l for l in out if l.startswith("X ")]
            out.append("E corrupt")
            out.append("# tarfile's members under kvro's rules: %s" % e)
            return
        model.dump(out)


def add_member(tf, model, m):
    name = raw(m.name)
    t = m.type
    if t in IGNORED_TYPES:
        return
    if t in (tarfile.REGTYPE, tarfile.AREGTYPE) and name.endswith(b"/"):
        kind = "dir"  # an old-style directory
    elif t in (tarfile.DIRTYPE, b"D"):
        kind = "dir"
    elif t in (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, b"M"):
        kind = "special"
    elif t == tarfile.SYMTYPE:
        kind = "symlink"
    elif t == tarfile.LNKTYPE:
        kind = "hardlink"
    elif m.issparse() or t == tarfile.GNUTYPE_SPARSE:
        kind = "sparse"
    else:
        kind = "file"
    comps = normalise(name)
    if comps is None or len(b"/".join(comps)) > KEY_MAX:
        return  # skipped with a warning
    if not comps:
        return  # the root's own member ("./"), or a non-directory named so: skipped
    shown = esc(b"/".join(comps))
    if kind == "hardlink":
        target = normalise(raw(m.linkname))
        if not target:
            return  # skipped with a warning
        # tarfile: the last member of that name before the link.
        snap = model.lookup(target)
        if snap is None:
            node = Node("broken")
        elif snap.kind == "dir":
            node = Node("hldir")
            node.target = target
        elif snap.kind in ("file", "hlfile", "sparse"):
            node = Node("hlfile" if snap.kind != "sparse" else "sparse")
            node.size, node.hash = snap.size, snap.hash
        elif snap.kind == "hldir":
            node = Node("hldir")
            node.target = snap.target
        else:  # a symlink, special or broken
            node = Node(snap.kind)
            node.target = snap.target
        model.add(comps, node, shown)
        return
    node = Node(kind)
    if kind == "symlink":
        node.target = raw(m.linkname)
    elif kind in ("file", "sparse"):
        node.size = m.size
        if kind == "file" or model.sparse_mode == "read":
            try:
                f = tf.extractfile(m)
                node.hash = digest(f, m.size)
            except Exception:  # noqa: BLE001 - reported as a line
                node.hash = None
    model.add(comps, node, shown)


def main(argv):
    sparse_mode = "read"
    args = argv[1:]
    if len(args) >= 2 and args[0] == "--sparse":
        sparse_mode = args[1]
        args = args[2:]
    for path in args:
        out = []
        one(path, sparse_mode, out)
        sys.stdout.write("@ %s\n" % path)
        for line in out:
            sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
