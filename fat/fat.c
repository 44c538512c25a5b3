/*
 * fat.c — the FAT backend ("fat"): FAT12, FAT16 and FAT32 volumes with
 * VFAT long names, as a kvro_fs reached from kvro_open through the
 * FS->KV_RO adaptor. Read side here; the write side (create, mkdir,
 * write, destroy on a handle opened read-write) is fat_write.c.
 *
 * Open: the image is a FAT volume itself (a "superfloppy"), or a disk
 * with an MBR or GPT partition table (fat_part.c), in which case
 * kvro_options.partition picks a partition (0: the only FAT one) and the
 * volume is read through a kvro_io_window on it, so everything below sees
 * one volume starting at byte 0 whatever the I/O object. The boot sector
 * is decoded (fat_bpb.c) and the FAT read and checked (fat_table.c).
 *
 * A key is resolved one component at a time from the root directory,
 * with the checks for loops and cross-linked entries (fat_walk.c). A
 * directory that holds one name twice (or two names equal but for case)
 * is refused by list, naming the name: a lookup finds only the first, so
 * listing both would show what cannot be read. Reads find their clusters
 * in the file's chain, cached (fat_table.c), and read each run of
 * consecutive clusters with one call. Directories are decoded whole and
 * cached (fat_dir.c: 16 MiB at most a handle), so a key resolved again, a
 * sibling's stat, a missing key or a listing reads nothing; list_info
 * gives each entry's stat from that one pass (what stat says, through one
 * function, with the checks a walk into a subdirectory makes), where the
 * core would otherwise stat every key. Every write-side operation empties
 * that cache before and after it (the write wrappers below). After open,
 * only the chain cache, the directory cache and the directory owners
 * change, each under its own lock: any number of threads may stat, read
 * and list at once.
 *
 * What stat says: mode 0644 for a file (0444 with the read-only
 * attribute), 0755 for a directory; mtime the last-write time (fat_dir.c:
 * 2-second resolution, read as UTC); id the byte offset of the entry's
 * short entry in the volume (1 for the root): unique and stable while the
 * handle is open, since FAT has no hard links; nlink 1.
 */
#include "fat_vol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD(...) kvro_error_set(err, KVRO_E_CORRUPT, "FAT: " __VA_ARGS__)

/* ------------------------------------------------------------ opening */

static int fat_bid(const kvro_probe *p)
{
    if (!p->io || p->head_len < 512)
        return KVRO_BID_NONE;
    bool disk;
    const char *table;
    fat_part parts[FAT_MAX_PARTS];
    int n = 0;
    kvro_status s =
        kvro__fat_part_scan(p->io, p->size, p->head, p->head_len, &disk, &table, parts, &n, NULL);
    /* Weak bids are boot sectors and tables we can say what is wrong with:
     * opening them explains (a damaged BPB, no FAT partition). */
    if (s == KVRO_E_CORRUPT)
        return KVRO_BID_WEAK;
    if (s != KVRO_OK)
        return KVRO_BID_NONE;
    if (!disk) {
        fat_bpb b;
        return kvro__fat_bpb_decode(p->head, p->head_len, p->size, &b, NULL) == KVRO_OK
                   ? KVRO_BID_CHECKED
                   : KVRO_BID_WEAK;
    }
    for (int i = 0; i < n; i++)
        if (parts[i].fat)
            return KVRO_BID_CHECKED;
    return KVRO_BID_WEAK;
}

static void describe_parts(const fat_part *parts, int n, bool fat_only, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && o < size; i++)
        if (!fat_only || parts[i].fat)
            o += (size_t)snprintf(buf + o, size - o, "%s%d: %s at byte %lld, %lld bytes%s",
                                  o ? "; " : "", parts[i].number, parts[i].type,
                                  (long long)parts[i].offset, (long long)parts[i].length,
                                  parts[i].fat ? ", FAT" : "");
}

/* Whether a partition's type says FAT (when its boot sector does not). */
static bool fat_typed(const fat_part *p)
{
    return strncmp(p->type, "FAT", 3) == 0 || strcmp(p->type, "basic data") == 0 ||
           strcmp(p->type, "EFI system") == 0;
}

/* The partition to open: number WANT, or the only FAT one. */
static kvro_status pick(const fat_part *parts, int n, int want, const fat_part **out,
                        kvro_error *err)
{
    char list[400];
    describe_parts(parts, n, false, list, sizeof list);
    if (want > 0) {
        for (int i = 0; i < n; i++)
            if (parts[i].number == want) {
                if (!parts[i].inside)
                    return BAD("partition %d (%lld bytes at byte %lld) lies past the end of the "
                               "disk",
                               want, (long long)parts[i].length, (long long)parts[i].offset);
                *out = &parts[i];
                return KVRO_OK;
            }
        return kvro_error_set(err, KVRO_E_INVALID, "FAT: the disk has no partition %d (%s)", want,
                              n ? list : "no partitions");
    }
    int fat = 0, typed = 0;
    for (int i = 0; i < n; i++) {
        if (!parts[i].inside)
            return BAD("partition %d (%lld bytes at byte %lld) lies past the end of the disk",
                       parts[i].number, (long long)parts[i].length, (long long)parts[i].offset);
        fat += parts[i].fat;
        typed += fat_typed(&parts[i]);
    }
    for (int i = 0; i < n; i++)
        /* No FAT boot sector, but one partition meant to hold FAT: open it,
         * and its boot sector's error says what is wrong. */
        if (fat == 1 ? parts[i].fat : fat == 0 && typed == 1 && fat_typed(&parts[i])) {
            *out = &parts[i];
            return KVRO_OK;
        }
    if (fat == 0)
        return kvro_error_set(err, KVRO_E_UNSUPPORTED, "FAT: no FAT filesystem on this disk (%s)",
                              n ? list : "an empty partition table");
    describe_parts(parts, n, true, list, sizeof list);
    return kvro_error_set(err, KVRO_E_INVALID,
                          "FAT: %d FAT partitions; choose one (mkkv --partition N, kvfuse -o "
                          "partition=N, kvro_options.partition): %s",
                          fat, list);
}

static void describe(fat_vol *v, const char *table, const fat_part *parts, int n,
                     const fat_part *chosen)
{
    const fat_bpb *b = &v->bpb;
    size_t size = sizeof v->layout;
    size_t o = (size_t)snprintf(v->layout, size, "FAT%d, %u clusters of %u bytes, %u-byte sectors",
                                b->type, b->clusters, b->cluster_size, b->sector_size);
    if (b->label[0] && o < size)
        o += (size_t)snprintf(v->layout + o, size - o, ", label '%s'", b->label);
    if (b->has_fsinfo && b->free_count != 0xFFFFFFFF && o < size)
        o += (size_t)snprintf(v->layout + o, size - o, ", %u free (FSInfo)", b->free_count);
    for (int i = 0; i < n && o < size; i++)
        o += (size_t)snprintf(v->layout + o, size - o, "\n%s %s%d: %s at byte %lld, %lld bytes%s",
                              &parts[i] == chosen ? "*" : " ", table, parts[i].number,
                              parts[i].type, (long long)parts[i].offset, (long long)parts[i].length,
                              parts[i].fat ? ", FAT" : "");
}

static kvro_status fat_close(void *self, kvro_error *err)
{
    (void)err;
    fat_vol *v = self;
    if (!v)
        return KVRO_OK;
    /* Every write went out as it was made; this makes them durable. */
    kvro_status s = v->writable ? kvro_io_flush(v->io, err) : KVRO_OK;
    kvro__fat_write_close(v);
    kvro__fat_table_free(&v->table);
    kvro__fat_dircache_free(&v->dircache);
    pthread_mutex_destroy(&v->owners.lock);
    free(v->owners.slot);
    kvro_io_close(v->io);
    kvro_io_close(v->image);
    free(v);
    return s;
}

static kvro_status fat_open(const kvro_probe *p, const kvro_options *o, bool writable, void **self,
                            kvro_error *err)
{
    if (!p->io)
        return kvro_error_set(err, KVRO_E_UNSUPPORTED, "FAT: not an image");
    if (writable && !kvro_io_writable(p->io))
        return kvro_error_set(err, KVRO_E_READ_ONLY, "FAT: the image is read-only");
    bool disk = false;
    const char *table = "";
    static const fat_part none;
    fat_part *parts = malloc(FAT_MAX_PARTS * sizeof *parts);
    fat_vol *v = calloc(1, sizeof *v);
    int n = 0;
    const fat_part *chosen = &none;
    kvro_status s = parts && v ? KVRO_OK : kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    if (s == KVRO_OK)
        s = kvro__fat_part_scan(p->io, p->size, p->head, p->head_len, &disk, &table, parts, &n,
                                err);
    if (s == KVRO_OK && disk)
        s = pick(parts, n, o->partition, &chosen, err);
    else if (s == KVRO_OK && o->partition > 0)
        s = kvro_error_set(err, KVRO_E_INVALID,
                           "FAT: partition %d asked for, but the image is a FAT volume with no "
                           "partition table",
                           o->partition);
    if (s == KVRO_OK && disk)
        s = kvro_io_window(p->io, chosen->offset, chosen->length, &v->io, err);
    else if (s == KVRO_OK)
        v->io = kvro_io_ref(p->io);
    int64_t size = disk ? chosen->length : p->size;
    if (s == KVRO_OK) {
        v->image = kvro_io_ref(p->io);
        v->image_off = disk ? chosen->offset : 0;
        v->vol_size = size;
    }
    unsigned char boot[512];
    if (s == KVRO_OK)
        s = kvro__fat_read_exact(v, 0, boot, sizeof boot, "the boot sector", err);
    if (s == KVRO_OK)
        s = kvro__fat_bpb_decode(boot, sizeof boot, size, &v->bpb, err);
    if (s == KVRO_OK) {
        kvro__fat_fsinfo_read(v->io, &v->bpb);
        s = kvro__fat_table_load(v->io, &v->bpb, &v->table, err);
    }
    if (s == KVRO_OK && writable)
        s = kvro__fat_write_open(v, err);
    if (s == KVRO_OK)
        describe(v, table, parts, n, chosen);
    free(parts);
    if (s != KVRO_OK) {
        if (v)
            kvro__fat_write_close(v);
        if (v && v->table.raw)
            kvro__fat_table_free(&v->table);
        if (v) {
            kvro_io_close(v->io);
            kvro_io_close(v->image);
        }
        free(v);
        return s;
    }
    pthread_mutex_init(&v->owners.lock, NULL);
    kvro__fat_dircache_init(&v->dircache);
    *self = v;
    return KVRO_OK;
}

/* The chain of file N, as far as its size. */
static kvro_status file_chain(fat_vol *v, const fat_node *n, fat_chain **out, kvro_error *err)
{
    uint32_t cs = v->bpb.cluster_size;
    if (n->first == 0)
        return BAD("a file of %u bytes with no first cluster", n->size);
    uint32_t want = (uint32_t)(((uint64_t)n->size + cs - 1) / cs);
    return kvro__fat_chain_get(&v->table, n->first, want, false, out, err);
}

/* What stat says of entry N (the header comment): stat and list_info
 * both say it through this, so the two cannot disagree. */
static kvro_info node_info(const fat_node *n)
{
    return (kvro_info){
        .kind = n->dir ? KVRO_KIND_DIR : KVRO_KIND_FILE,
        .size = n->dir ? 0 : n->size,
        .mtime = kvro__fat_time(n->date, n->time),
        .mode = n->dir             ? 0755
                : (n->attr & 0x01) ? 0444
                                   : 0644,
        .has_mode = true,
        .id = n->pos ? (uint64_t)n->pos : 1,
        .nlink = 1,
    };
}

static kvro_status fat_stat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    fat_vol *v = self;
    fat_node n;
    kvro_status s = kvro__fat_walk(v, key, &n, err);
    if (s == KVRO_OK)
        *st = node_info(&n);
    return s;
}

static kvro_status fat_read(void *self, const char *key, int64_t off, int64_t len, void *buf,
                            int64_t *nread, kvro_error *err)
{
    fat_vol *v = self;
    fat_node n;
    *nread = 0;
    kvro_status s = kvro__fat_walk(v, key, &n, err);
    if (s == KVRO_OK && n.dir)
        s = kvro_error_set(err, KVRO_E_IS_DIR, "FAT: a directory, not a value");
    if (s != KVRO_OK || off >= n.size || len == 0)
        return s;
    if (len > (int64_t)n.size - off)
        len = (int64_t)n.size - off;
    fat_chain *ch = NULL;
    s = file_chain(v, &n, &ch, err);
    const uint32_t cs = v->bpb.cluster_size;
    int64_t done = 0;
    while (s == KVRO_OK && done < len) {
        int64_t at = off + done;
        const fat_run *r = kvro__fat_chain_find(ch, (uint32_t)(at / cs));
        int64_t in_run = at - (int64_t)r->index * cs;
        int64_t n_run = (int64_t)r->count * cs - in_run;
        int64_t want = len - done < n_run ? len - done : n_run;
        s = kvro__fat_read_exact(v, v->bpb.data_off + (int64_t)(r->cluster - 2) * cs + in_run,
                                 (char *)buf + done, (size_t)want, "a file's cluster", err);
        if (s == KVRO_OK)
            done += want;
    }
    kvro__fat_chain_put(&v->table, ch);
    *nread = s == KVRO_OK ? done : 0;
    return s;
}

/* Listings. A directory that holds one name twice (or two names equal
 * under the lookups' folding, fat_dir.c) is damaged: a lookup finds only
 * the first of the two, so listing both would show an entry that cannot
 * be read (or, of another kind, a kind stat contradicts). The directory
 * is refused, naming the name: the handle has no channel for a warning
 * after open (kvro_options.warning is called during kvro_open only), and
 * silently listing one of the two would hide an entry. The listing
 * (fat_dir.c) finds such a pair as it hashes the names, so a directory of
 * 65,536 entries stays linear, and list and list_info share it. */

/* DIR's listing for list and list_info, or the error that refuses it;
 * DIR's entry in *N and the walk's SEEN and *DEPTH as walk leaves them. */
static kvro_status listing_of(fat_vol *v, const char *dir, fat_node *n, uint32_t *seen,
                              size_t *depth, fat_listing **out, kvro_error *err)
{
    *out = NULL;
    kvro_status s = kvro__fat_walk_seen(v, dir, n, seen, depth, err);
    if (s == KVRO_OK && !n->dir)
        s = kvro_error_set(err, KVRO_E_NOT_DIR, "FAT: a file, not a directory");
    if (s == KVRO_OK)
        s = kvro__fat_listing_get(v, n, out, err);
    if (s != KVRO_OK)
        return s;
    const fat_listing *l = *out;
    if (l->dup == l->n)
        return KVRO_OK;
    const fat_listed *o = &l->e[l->dup_of], *e = &l->e[l->dup];
    const char *was = l->names + o->off, *name = l->names + e->off;
    const char *what = *dir ? "directory '" : "the root directory";
    const char *close = *dir ? "'" : "";
    bool same = o->len == e->len && memcmp(was, name, o->len) == 0;
    s = same ? BAD("%s%.150s%s holds '%.150s' twice: only the first entry can be read, the later "
                   "one is hidden (fsck.fat repairs this)",
                   what, dir, close, name)
             : BAD("%s%.150s%s holds '%.*s' and '%.150s', one name to FAT (case-insensitive): "
                   "only the first can be read, the later one is hidden (fsck.fat does not "
                   "compare long names: rename it where it was made)",
                   what, dir, close, (int)(o->len > 150 ? 150 : o->len), was, name);
    kvro__fat_listing_put(v, *out);
    *out = NULL;
    return s;
}

static kvro_status fat_list(void *self, const char *dir, kvro_list_fn fn, void *arg,
                            kvro_error *err)
{
    fat_vol *v = self;
    fat_listing *l;
    fat_node n;
    uint32_t seen[FAT_DEPTH_MAX];
    size_t depth;
    kvro_status s = listing_of(v, dir, &n, seen, &depth, &l, err);
    for (size_t i = 0; s == KVRO_OK && i < l->n; i++)
        if (fn(arg, l->names + l->e[i].off, l->e[i].node.dir ? KVRO_KIND_DIR : KVRO_KIND_FILE))
            break;
    kvro__fat_listing_put(v, l);
    return s;
}

/* kvro_list_info's pass (backend.h): each entry's stat from the entry
 * itself, in one pass over the directory, no key resolved again. Each
 * entry gets the checks a walk to it makes (kvro__fat_entry_check: a
 * subdirectory with no cluster or that loops, a chain another entry owns),
 * so each entry's status is the one stat gives. */
static kvro_status fat_list_info(void *self, const char *dir, kvro_list_info_fn fn, void *arg,
                                 kvro_error *err)
{
    fat_vol *v = self;
    fat_listing *l;
    fat_node n;
    uint32_t seen[FAT_DEPTH_MAX];
    size_t depth;
    kvro_status s = listing_of(v, dir, &n, seen, &depth, &l, err);
    /* An entry's key, for the messages the checks compose (not given: a
     * listing reports each entry's status only). */
    char *key = s == KVRO_OK ? malloc(KVRO_KEY_MAX + 1) : NULL;
    if (s == KVRO_OK && !key)
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing the directory");
    for (size_t i = 0; s == KVRO_OK && i < l->n; i++) {
        const fat_listed *e = &l->e[i];
        const char *name = l->names + e->off;
        kvro_info st = node_info(&e->node);
        kvro_status es = KVRO_OK;
        if (e->node.dir || e->node.first) {
            int k = snprintf(key, KVRO_KEY_MAX + 1, "%s%s%s", dir, *dir ? "/" : "", name);
            size_t klen = k < 0 ? 0 : (size_t)k > KVRO_KEY_MAX ? KVRO_KEY_MAX : (size_t)k;
            kvro_error ignored;
            es = kvro__fat_entry_check(v, seen, depth, &n, &e->node, key, klen, name, e->len,
                                       &ignored);
        }
        if (fn(arg, name, es, es == KVRO_OK ? &st : NULL))
            break;
    }
    free(key);
    kvro__fat_listing_put(v, l);
    return s;
}

static kvro_status fat_locate(void *self, const char *key, kvro_io **io, int64_t *off, int64_t *len,
                              kvro_error *err)
{
    fat_vol *v = self;
    fat_node n;
    kvro_status s = kvro__fat_walk(v, key, &n, err);
    if (s == KVRO_OK && n.dir)
        s = kvro_error_set(err, KVRO_E_IS_DIR, "FAT: a directory, not a value");
    if (s != KVRO_OK)
        return s;
    *io = v->image;
    *off = v->image_off + v->bpb.data_off;
    *len = 0;
    if (n.size == 0)
        return KVRO_OK;
    fat_chain *ch = NULL;
    s = file_chain(v, &n, &ch, err);
    if (s == KVRO_OK && ch->nruns != 1)
        s = kvro_error_set(err, KVRO_E_UNSUPPORTED, "FAT: the file is fragmented (%u pieces)",
                           ch->nruns);
    int64_t at = 0;
    if (s == KVRO_OK) {
        at = v->bpb.data_off + (int64_t)(ch->runs[0].cluster - 2) * v->bpb.cluster_size;
        /* The image goes on past a partition: a value must not. */
        if (at > v->vol_size || n.size > v->vol_size - at)
            s = kvro_error_set(err, KVRO_E_CORRUPT, "FAT: the file runs past the end of the volume");
    }
    if (s == KVRO_OK) {
        *off = v->image_off + at;
        *len = n.size;
    }
    kvro__fat_chain_put(&v->table, ch);
    return s;
}

static void fat_stats(void *self, kvro_stats *st)
{
    fat_vol *v = self;
    snprintf(st->layout, sizeof st->layout, "%s", v->layout);
}

/* ------------------------------------------------------ write side */

/* Every write-side operation changes directories or entries (a write
 * an entry's size and first cluster): the directory cache is emptied
 * before it (and not used during it: fat_write.c's own lookups read the
 * image as it is at each step) and after it (what it changed is read
 * again), whether it succeeded or not. */

static kvro_status fat_create(void *self, const char *key, kvro_error *err)
{
    kvro__fat_dircache_bump(self);
    kvro_status s = kvro__fat_create(self, key, err);
    kvro__fat_dircache_bump(self);
    return s;
}

static kvro_status fat_mkdir(void *self, const char *key, kvro_error *err)
{
    kvro__fat_dircache_bump(self);
    kvro_status s = kvro__fat_mkdir(self, key, err);
    kvro__fat_dircache_bump(self);
    return s;
}

static kvro_status fat_write(void *self, const char *key, int64_t off, const void *buf, int64_t len,
                             kvro_error *err)
{
    kvro__fat_dircache_bump(self);
    kvro_status s = kvro__fat_write(self, key, off, buf, len, err);
    kvro__fat_dircache_bump(self);
    return s;
}

static kvro_status fat_destroy(void *self, const char *key, kvro_error *err)
{
    kvro__fat_dircache_bump(self);
    kvro_status s = kvro__fat_destroy(self, key, err);
    kvro__fat_dircache_bump(self);
    return s;
}

static kvro_status fat_rename(void *self, const char *from, const char *to, kvro_error *err)
{
    kvro__fat_dircache_bump(self);
    kvro_status s = kvro__fat_rename(self, from, to, err);
    kvro__fat_dircache_bump(self);
    return s;
}

const kvro_backend kvro__backend_fat = {
    .name = "fat",
    .description = "a FAT12/16/32 image with long names, or a disk image with MBR/GPT "
                   "partitions (read and write)",
    .bid = fat_bid,
    .fs_open = fat_open,
    .close = fat_close,
    .stat = fat_stat,
    .read = fat_read,
    .list = fat_list,
    .list_info = fat_list_info,
    .locate = fat_locate,
    .stats = fat_stats,
    .create = fat_create,
    .mkdir = fat_mkdir,
    .write = fat_write,
    .destroy = fat_destroy,
    .rename = fat_rename,
};
