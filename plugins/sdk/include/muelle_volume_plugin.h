/*
 * muelle volume driver plugins: the C ABI, version 1.
 *
 * A plugin is a shared library that exports one symbol,
 *
 *     const struct muelle_volume_plugin *muelle_volume_plugin_v1(void);
 *
 * returning a pointer to a static table that lives as long as the library
 * (muelle never unloads a plugin). muelle checks `abi_version` and
 * `struct_size` before it calls anything else. See plugins/README.md for the
 * rules: lifetimes of every pointer, threading, errors and versioning.
 */
#ifndef MUELLE_VOLUME_PLUGIN_H
#define MUELLE_VOLUME_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MUELLE_VOLUME_ABI_VERSION 1u
#define MUELLE_VOLUME_PLUGIN_SYMBOL "muelle_volume_plugin_v1"

/* Status codes every call returns. On anything but MUELLE_OK the plugin
 * may put a one-line, human-readable message in `*out`. */
#define MUELLE_OK 0
#define MUELLE_ERROR 1         /* anything else: the message says what */
#define MUELLE_NOT_FOUND 2     /* no volume of that name */
#define MUELLE_INVALID 3       /* bad name or option: the message says which */
#define MUELLE_BUSY 4          /* still mounted or in use */
#define MUELLE_PANIC 5         /* the plugin caught its own panic/abort path */

#define MUELLE_SCOPE_LOCAL 0u
#define MUELLE_SCOPE_GLOBAL 1u

#define MUELLE_LOG_ERROR 1u
#define MUELLE_LOG_WARN 2u
#define MUELLE_LOG_INFO 3u
#define MUELLE_LOG_DEBUG 4u

/* Borrowed bytes (UTF-8, not NUL-terminated), valid only during the call
 * that receives them. */
typedef struct muelle_str {
    const uint8_t *ptr;
    size_t len;
} muelle_str;

typedef struct muelle_option {
    muelle_str key;
    muelle_str value;
} muelle_option;

/* Bytes the plugin allocates and hands to muelle, which returns them to the
 * plugin's `free_buf` exactly once. {NULL, 0} means empty. */
typedef struct muelle_buf {
    uint8_t *ptr;
    size_t len;
} muelle_buf;

/* What muelle passes to `init`; valid only during `init`, except `log` and
 * `log_ctx`, which stay valid for the life of the instance. */
typedef struct muelle_host {
    uint32_t abi_version;
    uint32_t struct_size;
    /* A folder owned by this plugin (ROOT/plugins-data/NAME): keep state
     * there, not in memory, since every muelle command is a new process. */
    muelle_str state_dir;
    /* Logs reach muelle's --log-level output; callable from any thread. */
    void (*log)(void *log_ctx, uint32_t level, muelle_str message);
    void *log_ctx;
} muelle_host;

typedef struct muelle_volume_plugin {
    uint32_t abi_version; /* MUELLE_VOLUME_ABI_VERSION */
    uint32_t struct_size; /* sizeof(struct muelle_volume_plugin) */
    muelle_str name;      /* driver name (static), equal to the file's stem */
    muelle_str version;   /* plugin version (static), free-form */
    uint32_t scope;       /* MUELLE_SCOPE_LOCAL or MUELLE_SCOPE_GLOBAL */

    /* Makes an instance; *instance is passed to every call below. */
    int32_t (*init)(const muelle_host *host, void **instance, muelle_buf *out);
    /* Returns a buffer this plugin allocated. */
    void (*free_buf)(muelle_buf buf);

    int32_t (*create)(void *instance, muelle_str name, const muelle_option *options,
                      size_t options_len, muelle_buf *out);
    int32_t (*remove)(void *instance, muelle_str name, muelle_buf *out);
    /* Makes the volume available for `caller` (a container id) and puts
     * its host path in *out. Mounting twice for one caller counts once. */
    int32_t (*mount)(void *instance, muelle_str name, muelle_str caller, muelle_buf *out);
    int32_t (*unmount)(void *instance, muelle_str name, muelle_str caller, muelle_buf *out);
    /* The host path while mounted; empty when not mounted. */
    int32_t (*path)(void *instance, muelle_str name, muelle_buf *out);
    /* MUELLE_OK and the host path (empty when not mounted) if the volume
     * exists, MUELLE_NOT_FOUND if not. */
    int32_t (*get)(void *instance, muelle_str name, muelle_buf *out);
    /* Every volume name, one per line ('\n'). */
    int32_t (*list)(void *instance, muelle_buf *out);
} muelle_volume_plugin;

#ifdef __cplusplus
}
#endif

#endif /* MUELLE_VOLUME_PLUGIN_H */
