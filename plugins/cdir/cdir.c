/*
 * cdir: a muelle volume driver in plain C99, built from
 * muelle_volume_plugin.h alone (no Rust, no SDK): the proof that the header
 * is the whole contract.
 *
 * Every volume is a folder of the plugin's state folder (STATE, which
 * muelle passes to init: ROOT/plugins-data/cdir):
 *
 *     STATE/NAME/_data   the data, the path mount returns
 *     STATE/NAME/users   the callers that mounted it, one per line
 *     STATE/NAME/lock    flock(2)ed around every change of `users`
 *
 * Every muelle command is a process of its own and several may run at
 * once, so nothing is kept in memory between calls: the files are the
 * state, and the lock orders the processes. A volume has a path (is
 * "mounted") while it has callers; the data stays in place either way.
 *
 * Options of create: mode=OCTAL, the mode of _data (default 0755).
 *
 * Removal renames STATE/NAME to a hidden STATE/.removing.PID.N (names
 * never start with a dot, so it leaves the volume list at once) and then
 * deletes that tree through descriptors only (openat/unlinkat), never
 * following a symlink and never crossing into another filesystem.
 *
 * Build (what `cargo xtask plugins` runs):
 *     cc -std=c99 -Wall -Wextra -Werror -pedantic -fPIC -shared \
 *        -I plugins/sdk/include -o cdir.so plugins/cdir/cdir.c
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE 1 /* flock(2) */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "muelle_volume_plugin.h"

#define CDIR_NAME "cdir"
#define CDIR_VERSION "0.1.0"

/* muelle's volume names are at most 255 bytes (a file name's limit). */
#define MAX_NAME 255
/* Callers are container ids (64 hex digits); anything sane fits. */
#define MAX_CALLER 1024
/* The users file of a sane volume is far smaller. */
#define MAX_USERS_FILE (1024 * 1024)
#define DEFAULT_MODE 0755

typedef struct cdir {
    char *state_dir; /* NUL-terminated copy, without a trailing '/' */
    void (*log)(void *log_ctx, uint32_t level, muelle_str message);
    void *log_ctx;
} cdir;

/* ---- results: status codes with malloc'd one-line messages ---------- */

static void set_empty(muelle_buf *out)
{
    if (out != NULL) {
        out->ptr = NULL;
        out->len = 0;
    }
}

/* Puts a copy of `text` (without its NUL) in *out; empty stays {NULL, 0}. */
static int32_t set_text(muelle_buf *out, const char *text)
{
    size_t len = strlen(text);
    uint8_t *copy;

    set_empty(out);
    if (out == NULL || len == 0) {
        return MUELLE_OK;
    }
    copy = malloc(len);
    if (copy == NULL) {
        return MUELLE_ERROR;
    }
    memcpy(copy, text, len);
    out->ptr = copy;
    out->len = len;
    return MUELLE_OK;
}

/* Returns `status`, with the formatted message in *out (left empty if
 * there is no memory for it: the status still says what happened). */
static int32_t fail(muelle_buf *out, int32_t status, const char *fmt, ...)
{
    va_list args;
    char *text;
    int len;

    set_empty(out);
    if (out == NULL) {
        return status;
    }
    va_start(args, fmt);
    len = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (len <= 0) {
        return status;
    }
    text = malloc((size_t)len + 1);
    if (text == NULL) {
        return status;
    }
    va_start(args, fmt);
    vsnprintf(text, (size_t)len + 1, fmt, args);
    va_end(args);
    out->ptr = (uint8_t *)text;
    out->len = (size_t)len;
    return status;
}

/* strerror, thread-safe (the XSI strerror_r). */
static const char *why(int err, char *buf, size_t cap)
{
    if (strerror_r(err, buf, cap) != 0) {
        snprintf(buf, cap, "error %d", err);
    }
    return buf;
}

#define WHY(err) why((err), (char[128]){0}, 128)

/* `s` quoted for a message: printable ASCII as is, the rest as \xNN, cut
 * after 80 bytes. `dst` holds at least 4 * 80 + 8 bytes. */
#define SHOW_CAP (4 * 80 + 8)
static const char *show(muelle_str s, char *dst)
{
    size_t i, n = 0;
    const char *hex = "0123456789abcdef";

    dst[n++] = '"';
    for (i = 0; i < s.len && i < 80; i++) {
        uint8_t b = s.ptr[i];
        if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\') {
            dst[n++] = (char)b;
        } else {
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[b >> 4];
            dst[n++] = hex[b & 0xf];
        }
    }
    dst[n++] = '"';
    if (i < s.len) {
        dst[n++] = '.';
        dst[n++] = '.';
        dst[n++] = '.';
    }
    dst[n] = '\0';
    return dst;
}

#define SHOW(s) show((s), (char[SHOW_CAP]){0})

static muelle_str str_of(const char *text)
{
    muelle_str s;
    s.ptr = (const uint8_t *)text;
    s.len = strlen(text);
    return s;
}

static void say(const cdir *c, uint32_t level, const char *fmt, ...)
{
    char line[512];
    va_list args;

    if (c->log == NULL) {
        return;
    }
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    c->log(c->log_ctx, level, str_of(line));
}

/* ---- names, callers, options ---------------------------------------- */

/* muelle's rule for volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 255
 * bytes. No '/' can appear, and since the first byte is no dot, neither
 * "." nor ".." nor our hidden ".removing.*" folders can be named. On
 * success `dst` holds the name, NUL-terminated. */
static int valid_name(muelle_str name)
{
    size_t i;
    int ok = name.ptr != NULL && name.len >= 2 && name.len <= MAX_NAME;

    for (i = 0; ok && i < name.len; i++) {
        uint8_t b = name.ptr[i];
        int alnum = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9');
        ok = alnum || (i > 0 && (b == '_' || b == '.' || b == '-'));
    }
    return ok;
}

static int32_t check_name(muelle_str name, char dst[MAX_NAME + 1], muelle_buf *out)
{
    if (!valid_name(name)) {
        return fail(out, MUELLE_INVALID,
                    "invalid volume name %s: names are [a-zA-Z0-9][a-zA-Z0-9_.-]+, at most %d bytes",
                    SHOW(name), MAX_NAME);
    }
    memcpy(dst, name.ptr, name.len);
    dst[name.len] = '\0';
    return MUELLE_OK;
}

/* A caller is one line of the users file: not empty, no newline, no NUL. */
static int32_t check_caller(muelle_str caller, char dst[MAX_CALLER + 1], muelle_buf *out)
{
    int ok = caller.ptr != NULL && caller.len > 0 && caller.len <= MAX_CALLER &&
             memchr(caller.ptr, '\n', caller.len) == NULL &&
             memchr(caller.ptr, '\0', caller.len) == NULL;

    if (!ok) {
        return fail(out, MUELLE_INVALID,
                    "invalid caller %s: one line of 1 to %d bytes, no NUL", SHOW(caller),
                    MAX_CALLER);
    }
    memcpy(dst, caller.ptr, caller.len);
    dst[caller.len] = '\0';
    return MUELLE_OK;
}

static int str_is(muelle_str s, const char *text)
{
    size_t len = strlen(text);
    return s.len == len && (len == 0 || memcmp(s.ptr, text, len) == 0);
}

/* mode=OCTAL: 1 to 5 octal digits, at most 07777. */
static int32_t parse_mode(muelle_str value, mode_t *mode, muelle_buf *out)
{
    size_t i;
    unsigned long m = 0;
    int ok = value.len >= 1 && value.len <= 5;

    for (i = 0; ok && i < value.len; i++) {
        ok = value.ptr[i] >= '0' && value.ptr[i] <= '7';
        m = m * 8 + (unsigned long)(value.ptr[i] - '0');
    }
    if (!ok || m > 07777) {
        return fail(out, MUELLE_INVALID,
                    "invalid value %s for option \"mode\": want an octal mode such as 0755",
                    SHOW(value));
    }
    *mode = (mode_t)m;
    return MUELLE_OK;
}

/* ---- the state folder and a volume's files --------------------------- */

static int32_t open_state(const cdir *c, int *fd, muelle_buf *out)
{
    *fd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*fd < 0) {
        int err = errno;
        return fail(out, MUELLE_ERROR, "cannot open the state folder %s: %s", c->state_dir,
                    WHY(err));
    }
    return MUELLE_OK;
}

/* The folder STATE/NAME, never through a symlink. */
static int32_t open_volume(const cdir *c, int statefd, const char *name, int *vdir,
                           muelle_buf *out)
{
    *vdir = openat(statefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*vdir < 0) {
        int err = errno;
        if (err == ENOENT) {
            return fail(out, MUELLE_NOT_FOUND, "no such volume: %s", name);
        }
        return fail(out, MUELLE_ERROR, "cannot open %s/%s: %s", c->state_dir, name, WHY(err));
    }
    return MUELLE_OK;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Opens STATE/NAME and holds its lock (flock, exclusive): released when
 * *lockfd is closed. The lock is the one at that path once held: a
 * volume removed (or removed and made again) meanwhile is seen. */
static int32_t lock_volume(const cdir *c, int statefd, const char *name, int *vdir,
                           int *lockfd, muelle_buf *out)
{
    int tries;

    for (tries = 0; tries < 100; tries++) {
        struct stat held_dir, held_lock, now_dir, now_lock;
        int again, err, status, fresh, same;

        status = open_volume(c, statefd, name, vdir, out);
        if (status != MUELLE_OK) {
            return status;
        }
        *lockfd = openat(*vdir, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (*lockfd < 0) {
            err = errno;
            close(*vdir);
            if (err == ENOENT) {
                continue; /* removed meanwhile: open_volume says so */
            }
            return fail(out, MUELLE_ERROR, "cannot open %s/%s/lock: %s", c->state_dir, name,
                        WHY(err));
        }
        while (flock(*lockfd, LOCK_EX) < 0) {
            if (errno != EINTR) {
                err = errno;
                close(*lockfd);
                close(*vdir);
                return fail(out, MUELLE_ERROR, "cannot lock %s/%s/lock: %s", c->state_dir,
                            name, WHY(err));
            }
        }
        /* Is what we hold still what the path names? */
        again = openat(statefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        same = again >= 0 && fstat(*vdir, &held_dir) == 0 && fstat(again, &now_dir) == 0 &&
               fstat(*lockfd, &held_lock) == 0 &&
               fstatat(again, "lock", &now_lock, AT_SYMLINK_NOFOLLOW) == 0 &&
               same_file(&held_dir, &now_dir) && same_file(&held_lock, &now_lock);
        fresh = again < 0 && errno == ENOENT;
        if (again >= 0) {
            close(again);
        }
        if (same) {
            return MUELLE_OK;
        }
        close(*lockfd);
        close(*vdir);
        if (fresh) {
            return fail(out, MUELLE_NOT_FOUND, "no such volume: %s", name);
        }
    }
    return fail(out, MUELLE_ERROR, "cannot lock volume %s: it keeps changing", name);
}

/* The callers of a volume: the lines of its users file. */
typedef struct users {
    char *text;    /* the file, NUL-terminated; lines cut at '\n' */
    char **lines;  /* pointers into text */
    size_t count;
} users;

static void users_free(users *u)
{
    free(u->lines);
    free(u->text);
    u->text = NULL;
    u->lines = NULL;
    u->count = 0;
}

static int32_t read_users(const cdir *c, int vdir, const char *name, users *u,
                          muelle_buf *out)
{
    size_t len = 0, cap = 4096, i, start;
    int fd, err;

    u->text = NULL;
    u->lines = NULL;
    u->count = 0;
    fd = openat(vdir, "users", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        if (err == ENOENT) {
            return MUELLE_OK;
        }
        return fail(out, MUELLE_ERROR, "cannot open %s/%s/users: %s", c->state_dir, name,
                    WHY(err));
    }
    u->text = malloc(cap);
    for (;;) {
        ssize_t got;
        if (u->text == NULL) {
            close(fd);
            return fail(out, MUELLE_ERROR, "out of memory reading the users of %s", name);
        }
        if (len + 1 == cap) {
            char *bigger;
            if (cap >= MAX_USERS_FILE) {
                close(fd);
                users_free(u);
                return fail(out, MUELLE_ERROR, "%s/%s/users is larger than %d bytes",
                            c->state_dir, name, MAX_USERS_FILE);
            }
            cap *= 2;
            bigger = realloc(u->text, cap);
            if (bigger == NULL) {
                free(u->text);
            }
            u->text = bigger;
            continue;
        }
        got = read(fd, u->text + len, cap - 1 - len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            err = errno;
            close(fd);
            users_free(u);
            return fail(out, MUELLE_ERROR, "cannot read %s/%s/users: %s", c->state_dir, name,
                        WHY(err));
        }
        if (got == 0) {
            break;
        }
        len += (size_t)got;
    }
    close(fd);
    u->text[len] = '\0';
    if (memchr(u->text, '\0', len) != NULL) {
        users_free(u);
        return fail(out, MUELLE_ERROR, "%s/%s/users holds a NUL byte", c->state_dir, name);
    }

    u->lines = malloc((len / 2 + 2) * sizeof *u->lines);
    if (u->lines == NULL) {
        users_free(u);
        return fail(out, MUELLE_ERROR, "out of memory reading the users of %s", name);
    }
    for (start = 0, i = 0; i <= len; i++) {
        if (i == len || u->text[i] == '\n') {
            u->text[i] = '\0';
            if (i > start) { /* blank lines are no callers */
                u->lines[u->count++] = u->text + start;
            }
            start = i + 1;
        }
    }
    return MUELLE_OK;
}

static int users_has(const users *u, const char *caller)
{
    size_t i;
    for (i = 0; i < u->count; i++) {
        if (strcmp(u->lines[i], caller) == 0) {
            return 1;
        }
    }
    return 0;
}

static int write_all(int fd, const char *bytes, size_t len)
{
    while (len > 0) {
        ssize_t put = write(fd, bytes, len);
        if (put < 0 && errno == EINTR) {
            continue;
        }
        if (put < 0) {
            return -1;
        }
        bytes += put;
        len -= (size_t)put;
    }
    return 0;
}

/* Replaces the users file with the lines of `u` except `skip` (may be
 * NULL), plus `add` (may be NULL): written to users.tmp, synced, renamed
 * over users, so a reader without the lock sees the old or the new list.
 * Call with the volume's lock held. */
static int32_t write_users(const cdir *c, int vdir, const char *name, const users *u,
                           const char *skip, const char *add, muelle_buf *out)
{
    size_t i;
    int fd, err = 0;

    fd = openat(vdir, "users.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd < 0) {
        err = errno;
        return fail(out, MUELLE_ERROR, "cannot write %s/%s/users.tmp: %s", c->state_dir, name,
                    WHY(err));
    }
    for (i = 0; i < u->count && err == 0; i++) {
        if (skip != NULL && strcmp(u->lines[i], skip) == 0) {
            continue;
        }
        if (write_all(fd, u->lines[i], strlen(u->lines[i])) < 0 || write_all(fd, "\n", 1) < 0) {
            err = errno;
        }
    }
    if (err == 0 && add != NULL &&
        (write_all(fd, add, strlen(add)) < 0 || write_all(fd, "\n", 1) < 0)) {
        err = errno;
    }
    if (err == 0 && fsync(fd) < 0) {
        err = errno;
    }
    if (close(fd) < 0 && err == 0) {
        err = errno;
    }
    if (err == 0 && renameat(vdir, "users.tmp", vdir, "users") < 0) {
        err = errno;
    }
    if (err != 0) {
        unlinkat(vdir, "users.tmp", 0);
        return fail(out, MUELLE_ERROR, "cannot write %s/%s/users: %s", c->state_dir, name,
                    WHY(err));
    }
    return MUELLE_OK;
}

/* STATE/NAME/_data, malloc'd. */
static char *data_path(const cdir *c, const char *name)
{
    size_t len = strlen(c->state_dir) + 1 + strlen(name) + sizeof "/_data";
    char *path = malloc(len);
    if (path != NULL) {
        snprintf(path, len, "%s/%s/_data", c->state_dir, name);
    }
    return path;
}

static int32_t put_data_path(const cdir *c, const char *name, muelle_buf *out)
{
    char *path = data_path(c, name);
    int32_t status;

    if (path == NULL) {
        return fail(out, MUELLE_ERROR, "out of memory");
    }
    status = set_text(out, path);
    free(path);
    return status == MUELLE_OK ? MUELLE_OK : fail(out, MUELLE_ERROR, "out of memory");
}

/* ---- deleting a tree without following symlinks ---------------------- */

/* One folder on the way down: its identity, to check the way back up,
 * and its name in its parent, to remove it once empty. */
typedef struct level {
    dev_t dev;
    ino_t ino;
    char name[NAME_MAX + 1];
} level;

typedef enum { SCAN_EMPTY, SCAN_AGAIN, SCAN_DESCEND, SCAN_FAILED } scan_result;

/* One pass over the folder `fd`: unlinks what is not a folder; stops at
 * the first folder, whose name goes to `sub`. */
static scan_result scan(int fd, dev_t dev, char sub[NAME_MAX + 1], char *err, size_t cap)
{
    DIR *dir;
    struct dirent *ent;
    int copy, removed = 0;
    scan_result result = SCAN_EMPTY;

    copy = dup(fd);
    if (copy < 0 || (dir = fdopendir(copy)) == NULL) {
        int e = errno;
        if (copy >= 0) {
            close(copy);
        }
        snprintf(err, cap, "cannot read a folder: %s", WHY(e));
        return SCAN_FAILED;
    }
    rewinddir(dir); /* the copy shares fd's offset */
    for (;;) {
        struct stat st;
        errno = 0;
        ent = readdir(dir);
        if (ent == NULL) {
            if (errno != 0) {
                snprintf(err, cap, "cannot read a folder: %s", WHY(errno));
                result = SCAN_FAILED;
            }
            break;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) {
            continue;
        }
        if (fstatat(fd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) {
                continue;
            }
            snprintf(err, cap, "cannot stat %s: %s", ent->d_name, WHY(errno));
            result = SCAN_FAILED;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev) {
                snprintf(err, cap, "%s is another filesystem (a mount?): not deleted",
                         ent->d_name);
                result = SCAN_FAILED;
                break;
            }
            snprintf(sub, NAME_MAX + 1, "%s", ent->d_name);
            result = SCAN_DESCEND;
            break;
        }
        /* A symlink is unlinked itself, never followed. */
        if (unlinkat(fd, ent->d_name, 0) < 0 && errno != ENOENT) {
            snprintf(err, cap, "cannot delete %s: %s", ent->d_name, WHY(errno));
            result = SCAN_FAILED;
            break;
        }
        removed = 1;
    }
    closedir(dir);
    if (result == SCAN_EMPTY && removed) {
        /* Entries removed while reading may hide others: read again. */
        result = SCAN_AGAIN;
    }
    return result;
}

/* Deletes `name` in the folder `parentfd` and everything below it, through
 * descriptors only: no symlink is followed, no other filesystem entered.
 * It walks down one folder at a time and back up through "..", checking
 * each step against the identity it recorded on the way down, so the
 * open descriptors stay few however deep the tree is. */
static int delete_tree(int parentfd, const char *name, char *err, size_t cap)
{
    level *stack = NULL;
    size_t depth = 0, room = 0;
    int fd = -1, failed = 0, retries = 0;
    struct stat st;
    char sub[NAME_MAX + 1];

    if (fstatat(parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        snprintf(err, cap, "cannot stat %s: %s", name, WHY(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(parentfd, name, 0) < 0) {
            snprintf(err, cap, "cannot delete %s: %s", name, WHY(errno));
            return -1;
        }
        return 0;
    }
    snprintf(sub, sizeof sub, "%s", name);
    for (;;) {
        /* Go down into `sub` (the top first). */
        int at = depth == 0 ? parentfd : fd;
        int child = openat(at, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat cst;
        scan_result r;

        if (child < 0 || fstat(child, &cst) < 0) {
            snprintf(err, cap, "cannot open %s: %s", sub, WHY(errno));
            if (child >= 0) {
                close(child);
            }
            failed = 1;
            break;
        }
        if (depth > 0 && cst.st_dev != stack[0].dev) {
            close(child);
            snprintf(err, cap, "%s is another filesystem (a mount?): not deleted", sub);
            failed = 1;
            break;
        }
        if (depth == room) {
            size_t bigger = room == 0 ? 16 : room * 2;
            level *grown = realloc(stack, bigger * sizeof *stack);
            if (grown == NULL) {
                close(child);
                snprintf(err, cap, "out of memory");
                failed = 1;
                break;
            }
            stack = grown;
            room = bigger;
        }
        stack[depth].dev = cst.st_dev;
        stack[depth].ino = cst.st_ino;
        snprintf(stack[depth].name, sizeof stack[depth].name, "%s", sub);
        depth++;
        if (fd >= 0) {
            close(fd);
        }
        fd = child;

        /* Empty the current folder, then climb while folders are empty. */
        for (;;) {
            r = scan(fd, stack[0].dev, sub, err, cap);
            if (r == SCAN_AGAIN) {
                continue;
            }
            if (r != SCAN_EMPTY) {
                break;
            }
            if (depth == 1) {
                close(fd);
                fd = -1;
                if (unlinkat(parentfd, stack[0].name, AT_REMOVEDIR) < 0) {
                    if (errno == ENOTEMPTY && ++retries < 100) {
                        /* Something appeared meanwhile: again. */
                        snprintf(sub, sizeof sub, "%s", stack[0].name);
                        depth = 0;
                        r = SCAN_DESCEND;
                        break;
                    }
                    snprintf(err, cap, "cannot delete %s: %s", stack[0].name, WHY(errno));
                    r = SCAN_FAILED;
                    break;
                }
                free(stack);
                return 0;
            } else {
                int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                struct stat ust;
                const level *parent = &stack[depth - 2];

                if (up < 0 || fstat(up, &ust) < 0 || ust.st_dev != parent->dev ||
                    ust.st_ino != parent->ino) {
                    if (up >= 0) {
                        close(up);
                    }
                    snprintf(err, cap, "%s moved while being deleted", stack[depth - 1].name);
                    r = SCAN_FAILED;
                    break;
                }
                close(fd);
                fd = up;
                depth--;
                if (unlinkat(fd, stack[depth].name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
                    if (errno == ENOTEMPTY && ++retries < 100) {
                        continue; /* rescanning finds what appeared */
                    }
                    snprintf(err, cap, "cannot delete %s: %s", stack[depth].name, WHY(errno));
                    r = SCAN_FAILED;
                    break;
                }
            }
        }
        if (r == SCAN_FAILED) {
            failed = 1;
            break;
        }
        /* SCAN_DESCEND: go down into `sub`. */
    }
    if (fd >= 0) {
        close(fd);
    }
    free(stack);
    return failed ? -1 : 0;
}

/* ---- mounts below a volume -------------------------------------------- */

/* Undoes mountinfo's octal escapes (\040 for a space...) in place. */
static void unescape(char *s)
{
    char *w = s;
    while (*s != '\0') {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 4;
        } else {
            *w++ = *s++;
        }
    }
    *w = '\0';
}

/* Whether anything is mounted at `dir` or below it, by this process's
 * mountinfo: 1 (and the mount point in `where`), 0, or -1 (and *err).
 * Deleting must never reach into a mounted filesystem. */
static int has_mounts(const char *dir, char *where, size_t cap, int *err)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *line = NULL;
    size_t line_cap = 0, len = strlen(dir);
    int found = 0;

    if (f == NULL) {
        *err = errno;
        return *err == ENOENT ? 0 : -1; /* no /proc: nothing to ask */
    }
    while (!found && getline(&line, &line_cap, f) >= 0) {
        /* Fields: id parent major:minor root MOUNT-POINT options ... */
        char *field = line, *end;
        int i;
        for (i = 0; i < 4 && field != NULL; i++) {
            field = strchr(field, ' ');
            field = field != NULL ? field + 1 : NULL;
        }
        if (field == NULL) {
            continue;
        }
        end = strchr(field, ' ');
        if (end != NULL) {
            *end = '\0';
        }
        unescape(field);
        if (strncmp(field, dir, len) == 0 && (field[len] == '\0' || field[len] == '/')) {
            snprintf(where, cap, "%s", field);
            found = 1;
        }
    }
    free(line);
    fclose(f);
    return found;
}

/* ---- the operations ------------------------------------------------------ */

static int32_t cdir_init(const muelle_host *host, void **instance, muelle_buf *out)
{
    cdir *c;
    size_t len;
    int fd;

    set_empty(out);
    if (host == NULL || instance == NULL) {
        return fail(out, MUELLE_ERROR, "init called without host or instance");
    }
    if (host->abi_version != MUELLE_VOLUME_ABI_VERSION ||
        host->struct_size < sizeof(muelle_host)) {
        return fail(out, MUELLE_INVALID, "host speaks ABI %u (host table of %u bytes), cdir speaks %u",
                    (unsigned)host->abi_version, (unsigned)host->struct_size,
                    (unsigned)MUELLE_VOLUME_ABI_VERSION);
    }
    len = host->state_dir.len;
    if (host->state_dir.ptr == NULL || len == 0 || host->state_dir.ptr[0] != '/' ||
        memchr(host->state_dir.ptr, '\0', len) != NULL) {
        return fail(out, MUELLE_INVALID, "state folder %s is not an absolute path",
                    SHOW(host->state_dir));
    }
    while (len > 1 && host->state_dir.ptr[len - 1] == '/') {
        len--;
    }
    c = malloc(sizeof *c);
    if (c == NULL || (c->state_dir = malloc(len + 1)) == NULL) {
        free(c);
        return fail(out, MUELLE_ERROR, "out of memory");
    }
    memcpy(c->state_dir, host->state_dir.ptr, len);
    c->state_dir[len] = '\0';
    c->log = host->log;
    c->log_ctx = host->log_ctx;

    fd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        int32_t status = fail(out, MUELLE_ERROR, "cannot open the state folder %s: %s",
                              c->state_dir, WHY(err));
        free(c->state_dir);
        free(c);
        return status;
    }
    close(fd);
    say(c, MUELLE_LOG_DEBUG, "cdir " CDIR_VERSION " keeps volumes in %s", c->state_dir);
    *instance = c;
    return MUELLE_OK;
}

static void cdir_free_buf(muelle_buf buf)
{
    free(buf.ptr);
}

static int32_t cdir_create(void *instance, muelle_str name_s, const muelle_option *options,
                           size_t options_len, muelle_buf *out)
{
    const cdir *c = instance;
    char name[MAX_NAME + 1];
    mode_t mode = DEFAULT_MODE;
    int32_t status;
    int statefd, vdir, lockfd, datafd, err;
    size_t i;

    set_empty(out);
    if (c == NULL) {
        return fail(out, MUELLE_ERROR, "called without an instance");
    }
    if ((status = check_name(name_s, name, out)) != MUELLE_OK) {
        return status;
    }
    if (options_len > 0 && options == NULL) {
        return fail(out, MUELLE_ERROR, "%lu options but no array", (unsigned long)options_len);
    }
    for (i = 0; i < options_len; i++) {
        if (str_is(options[i].key, "mode")) {
            if ((status = parse_mode(options[i].value, &mode, out)) != MUELLE_OK) {
                return status;
            }
        } else {
            return fail(out, MUELLE_INVALID, "unknown option %s (cdir takes mode=OCTAL)",
                        SHOW(options[i].key));
        }
    }

    if ((status = open_state(c, &statefd, out)) != MUELLE_OK) {
        return status;
    }
    /* mkdir claims the name: of two creates, one gets EEXIST. */
    if (mkdirat(statefd, name, 0700) < 0) {
        err = errno;
        close(statefd);
        if (err == EEXIST) {
            return fail(out, MUELLE_ERROR, "volume %s already exists", name);
        }
        return fail(out, MUELLE_ERROR, "cannot make %s/%s: %s", c->state_dir, name, WHY(err));
    }
    /* Hold the lock while _data is made, so a mount waits for it. */
    status = lock_volume(c, statefd, name, &vdir, &lockfd, out);
    if (status != MUELLE_OK) {
        close(statefd);
        return status;
    }
    err = 0;
    if (mkdirat(vdir, "_data", 0700) < 0) {
        err = errno;
    } else if ((datafd = openat(vdir, "_data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                   O_CLOEXEC)) < 0) {
        err = errno;
    } else {
        /* fchmod, not mkdir's mode: the umask must not change it. */
        if (fchmod(datafd, mode) < 0) {
            err = errno;
        }
        close(datafd);
    }
    if (err != 0) {
        char why_undo[256] = "";
        status = fail(out, MUELLE_ERROR, "cannot make %s/%s/_data: %s", c->state_dir, name,
                      WHY(err));
        /* Undo: the volume was never there. */
        if (delete_tree(statefd, name, why_undo, sizeof why_undo) < 0) {
            say(c, MUELLE_LOG_WARN, "cannot undo the half-made volume %s: %s", name, why_undo);
        }
    }
    close(lockfd);
    close(vdir);
    close(statefd);
    if (status == MUELLE_OK) {
        say(c, MUELLE_LOG_DEBUG, "created volume %s (mode %04o)", name, (unsigned)mode);
    }
    return status;
}

static int32_t cdir_remove(void *instance, muelle_str name_s, muelle_buf *out)
{
    const cdir *c = instance;
    char name[MAX_NAME + 1], trash[64], where[PATH_MAX], why_delete[512];
    char *vpath = NULL, *real = NULL;
    users u;
    int32_t status;
    int statefd, vdir, lockfd, mounted, n, err;
    size_t len;

    set_empty(out);
    if (c == NULL) {
        return fail(out, MUELLE_ERROR, "called without an instance");
    }
    if ((status = check_name(name_s, name, out)) != MUELLE_OK) {
        return status;
    }
    if ((status = open_state(c, &statefd, out)) != MUELLE_OK) {
        return status;
    }
    if ((status = lock_volume(c, statefd, name, &vdir, &lockfd, out)) != MUELLE_OK) {
        close(statefd);
        return status;
    }
    if ((status = read_users(c, vdir, name, &u, out)) != MUELLE_OK) {
        goto done;
    }
    if (u.count > 0) {
        status = fail(out, MUELLE_BUSY, "volume %s is in use by %lu caller(s), first %s", name,
                      (unsigned long)u.count, SHOW(str_of(u.lines[0])));
        users_free(&u);
        goto done;
    }
    users_free(&u);

    /* Never delete through a mount: refuse while anything is mounted in it. */
    len = strlen(c->state_dir) + 1 + strlen(name) + 1;
    vpath = malloc(len);
    if (vpath == NULL) {
        status = fail(out, MUELLE_ERROR, "out of memory");
        goto done;
    }
    snprintf(vpath, len, "%s/%s", c->state_dir, name);
    real = realpath(vpath, NULL);
    if (real == NULL) {
        err = errno;
        status = fail(out, MUELLE_ERROR, "cannot resolve %s: %s", vpath, WHY(err));
        goto done;
    }
    mounted = has_mounts(real, where, sizeof where, &err);
    if (mounted != 0) {
        status = mounted > 0 ? fail(out, MUELLE_BUSY, "volume %s has a mount at %s", name, where)
                             : fail(out, MUELLE_ERROR, "cannot read /proc/self/mountinfo: %s",
                                    WHY(err));
        goto done;
    }

    /* Out of the list at once (one rename), then deleted at leisure. */
    for (n = 0;; n++) {
        snprintf(trash, sizeof trash, ".removing.%ld.%d", (long)getpid(), n);
        if (renameat(statefd, name, statefd, trash) == 0) {
            break;
        }
        err = errno;
        if ((err != EEXIST && err != ENOTEMPTY) || n >= 100) {
            status = fail(out, MUELLE_ERROR, "cannot move %s aside to %s: %s", vpath, trash,
                          WHY(err));
            goto done;
        }
    }
    if (delete_tree(statefd, trash, why_delete, sizeof why_delete) < 0) {
        status = fail(out, MUELLE_ERROR,
                      "volume %s is gone, but deleting its files in %s/%s failed: %s", name,
                      c->state_dir, trash, why_delete);
        goto done;
    }
    say(c, MUELLE_LOG_DEBUG, "removed volume %s", name);
    status = MUELLE_OK;
done:
    free(real);
    free(vpath);
    close(lockfd);
    close(vdir);
    close(statefd);
    return status;
}

static int32_t cdir_mount(void *instance, muelle_str name_s, muelle_str caller_s,
                          muelle_buf *out)
{
    const cdir *c = instance;
    char name[MAX_NAME + 1], caller[MAX_CALLER + 1];
    struct stat st;
    users u;
    int32_t status;
    int statefd, vdir, lockfd, err;

    set_empty(out);
    if (c == NULL) {
        return fail(out, MUELLE_ERROR, "called without an instance");
    }
    if ((status = check_name(name_s, name, out)) != MUELLE_OK ||
        (status = check_caller(caller_s, caller, out)) != MUELLE_OK) {
        return status;
    }
    if ((status = open_state(c, &statefd, out)) != MUELLE_OK) {
        return status;
    }
    if ((status = lock_volume(c, statefd, name, &vdir, &lockfd, out)) != MUELLE_OK) {
        close(statefd);
        return status;
    }
    if (fstatat(vdir, "_data", &st, AT_SYMLINK_NOFOLLOW) < 0) {
        err = errno;
        status = fail(out, MUELLE_ERROR, "volume %s is incomplete: %s/%s/_data: %s", name,
                      c->state_dir, name, WHY(err));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        status = fail(out, MUELLE_ERROR, "volume %s is damaged: %s/%s/_data is not a folder",
                      name, c->state_dir, name);
        goto done;
    }
    if ((status = read_users(c, vdir, name, &u, out)) != MUELLE_OK) {
        goto done;
    }
    if (!users_has(&u, caller)) {
        status = write_users(c, vdir, name, &u, NULL, caller, out);
        if (status == MUELLE_OK) {
            say(c, MUELLE_LOG_DEBUG, "mounted volume %s for %s (%lu caller(s))", name, caller,
                (unsigned long)u.count + 1);
        }
    } else {
        say(c, MUELLE_LOG_DEBUG, "volume %s is already mounted for %s", name, caller);
    }
    users_free(&u);
    if (status == MUELLE_OK) {
        status = put_data_path(c, name, out);
    }
done:
    close(lockfd);
    close(vdir);
    close(statefd);
    return status;
}

static int32_t cdir_unmount(void *instance, muelle_str name_s, muelle_str caller_s,
                            muelle_buf *out)
{
    const cdir *c = instance;
    char name[MAX_NAME + 1], caller[MAX_CALLER + 1];
    users u;
    int32_t status;
    int statefd, vdir, lockfd;

    set_empty(out);
    if (c == NULL) {
        return fail(out, MUELLE_ERROR, "called without an instance");
    }
    if ((status = check_name(name_s, name, out)) != MUELLE_OK ||
        (status = check_caller(caller_s, caller, out)) != MUELLE_OK) {
        return status;
    }
    if ((status = open_state(c, &statefd, out)) != MUELLE_OK) {
        return status;
    }
    if ((status = lock_volume(c, statefd, name, &vdir, &lockfd, out)) != MUELLE_OK) {
        close(statefd);
        return status;
    }
    if ((status = read_users(c, vdir, name, &u, out)) == MUELLE_OK) {
        if (users_has(&u, caller)) {
            status = write_users(c, vdir, name, &u, caller, NULL, out);
            if (status == MUELLE_OK) {
                say(c, MUELLE_LOG_DEBUG, "unmounted volume %s for %s (%lu caller(s) left)",
                    name, caller, (unsigned long)u.count - 1);
            }
        } else {
            say(c, MUELLE_LOG_DEBUG, "volume %s was not mounted for %s", name, caller);
        }
        users_free(&u);
    }
    close(lockfd);
    close(vdir);
    close(statefd);
    return status;
}

/* The data path when the volume has callers, else empty; NOT_FOUND when
 * there is no such volume. No lock: the users file is replaced whole. */
static int32_t cdir_path(void *instance, muelle_str name_s, muelle_buf *out)
{
    const cdir *c = instance;
    char name[MAX_NAME + 1];
    users u;
    int32_t status;
    int statefd, vdir;

    set_empty(out);
    if (c == NULL) {
        return fail(out, MUELLE_ERROR, "called without an instance");
    }
    if ((status = check_name(name_s, name, out)) != MUELLE_OK) {
        return status;
    }
    if ((status = open_state(c, &statefd, out)) != MUELLE_OK) {
        return status;
    }
    status = open_volume(c, statefd, name, &vdir, out);
    close(statefd);
    if (status != MUELLE_OK) {
        return status;
    }
    status = read_users(c, vdir, name, &u, out);
    close(vdir);
    if (status != MUELLE_OK) {
        return status;
    }
    if (u.count > 0) {
        status = put_data_path(c, name, out);
    }
    users_free(&u);
    return status;
}

static int32_t cdir_get(void *instance, muelle_str name, muelle_buf *out)
{
    return cdir_path(instance, name, out);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int32_t cdir_list(void *instance, muelle_buf *out)
{
    const cdir *c = instance;
    char **names = NULL, *joined;
    size_t count = 0, room = 0, total = 0, i, at;
    int32_t status = MUELLE_OK;
    int statefd, copy;
    DIR *dir;
    struct dirent *ent;

    set_empty(out);
    if (c == NULL) {
        return fail(out, MUELLE_ERROR, "called without an instance");
    }
    if ((status = open_state(c, &statefd, out)) != MUELLE_OK) {
        return status;
    }
    copy = dup(statefd);
    if (copy < 0 || (dir = fdopendir(copy)) == NULL) {
        int err = errno;
        if (copy >= 0) {
            close(copy);
        }
        close(statefd);
        return fail(out, MUELLE_ERROR, "cannot read %s: %s", c->state_dir, WHY(err));
    }
    for (;;) {
        struct stat st;
        char *name;

        errno = 0;
        ent = readdir(dir);
        if (ent == NULL) {
            if (errno != 0) {
                status = fail(out, MUELLE_ERROR, "cannot read %s: %s", c->state_dir,
                              WHY(errno));
            }
            break;
        }
        /* Volumes only: valid names of folders (not .removing.*, not junk). */
        if (!valid_name(str_of(ent->d_name))) {
            continue;
        }
        if (fstatat(statefd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode)) {
            continue;
        }
        if (count == room) {
            size_t bigger = room == 0 ? 32 : room * 2;
            char **grown = realloc(names, bigger * sizeof *names);
            if (grown == NULL) {
                status = fail(out, MUELLE_ERROR, "out of memory");
                break;
            }
            names = grown;
            room = bigger;
        }
        name = malloc(strlen(ent->d_name) + 1);
        if (name == NULL) {
            status = fail(out, MUELLE_ERROR, "out of memory");
            break;
        }
        strcpy(name, ent->d_name);
        names[count++] = name;
        total += strlen(name) + 1;
    }
    closedir(dir);
    close(statefd);

    if (status == MUELLE_OK && count > 0 && out != NULL) {
        qsort(names, count, sizeof *names, by_name);
        joined = malloc(total);
        if (joined == NULL) {
            status = fail(out, MUELLE_ERROR, "out of memory");
        } else {
            for (i = 0, at = 0; i < count; i++) {
                size_t len = strlen(names[i]);
                memcpy(joined + at, names[i], len);
                at += len;
                joined[at++] = '\n';
            }
            /* '\n' between names, none after the last. */
            out->ptr = (uint8_t *)joined;
            out->len = total - 1;
        }
    }
    for (i = 0; i < count; i++) {
        free(names[i]);
    }
    free(names);
    return status;
}

/* ---- the table ---------------------------------------------------------- */

static const muelle_volume_plugin cdir_plugin = {
    MUELLE_VOLUME_ABI_VERSION,
    (uint32_t)sizeof(muelle_volume_plugin),
    {(const uint8_t *)CDIR_NAME, sizeof CDIR_NAME - 1},
    {(const uint8_t *)CDIR_VERSION, sizeof CDIR_VERSION - 1},
    MUELLE_SCOPE_LOCAL,
    cdir_init,
    cdir_free_buf,
    cdir_create,
    cdir_remove,
    cdir_mount,
    cdir_unmount,
    cdir_path,
    cdir_get,
    cdir_list,
};

const struct muelle_volume_plugin *muelle_volume_plugin_v1(void);

const struct muelle_volume_plugin *muelle_volume_plugin_v1(void)
{
    return &cdir_plugin;
}
