// libhdf5 (Debian libhdf5-dev, serial build) as seen from Swift.
// HDF5 exposes type and flag constants as macros that expand to function calls
// or casts Swift cannot import; these inline functions return their values.
#ifndef ZOO_CHDF5_SHIM_H
#define ZOO_CHDF5_SHIM_H

#include <hdf5/serial/hdf5.h>

static inline hid_t zoo_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t zoo_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t zoo_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t zoo_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t zoo_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t zoo_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t zoo_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t zoo_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t zoo_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t zoo_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t zoo_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t zoo_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t zoo_H5S_ALL(void) { return H5S_ALL; }
static inline unsigned zoo_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned zoo_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned zoo_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned zoo_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline size_t zoo_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline hsize_t zoo_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }

// --- Used by ZooWeights (weight-file readers) ---------------------------------

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// Prepares the calling thread for libhdf5 calls on untrusted files: stops libhdf5 from
/// printing its error stack (per thread in thread-safe builds; zoo reports errors itself, see
/// `zoo_h5_innermost_error`) and from loading filter plugins (shared libraries) that a dataset
/// asks for by number.
static inline void zoo_h5_harden(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5PLset_loading_state(0);
}

/// External links name other files; following one would let a weight file make zoo open any
/// path (a FIFO would hang it). This callback refuses every such traversal.
static inline herr_t zoo_h5_refuse_external_link(const char *parent_file, const char *parent_group, const char *child_file,
                                                 const char *child_object, unsigned *access_flags, hid_t fapl,
                                                 void *data) {
    (void)parent_file; (void)parent_group; (void)child_file; (void)child_object;
    (void)access_flags; (void)fapl; (void)data;
    return -1;
}

/// Link, group and dataset access property lists that refuse external links (created once).
static inline hid_t zoo_h5_access_list(hid_t class_id, hid_t *cache) {
    if (*cache < 0) {
        hid_t list = H5Pcreate(class_id);
        if (list >= 0 && H5Pset_elink_cb(list, zoo_h5_refuse_external_link, NULL) >= 0) *cache = list;
    }
    return *cache < 0 ? H5P_DEFAULT : *cache;
}
static inline hid_t zoo_h5_link_access(void) {
    static hid_t cache = -1;
    return zoo_h5_access_list(H5P_LINK_ACCESS, &cache);
}
static inline hid_t zoo_h5_group_access(void) {
    static hid_t cache = -1;
    return zoo_h5_access_list(H5P_GROUP_ACCESS, &cache);
}
static inline hid_t zoo_h5_dataset_access(void) {
    static hid_t cache = -1;
    return zoo_h5_access_list(H5P_DATASET_ACCESS, &cache);
}

/// The object's address in the file (identifies it across hard links), or HADDR_UNDEF.
static inline haddr_t zoo_h5_object_address(hid_t object) {
    H5O_info_t info;
    if (H5Oget_info2(object, &info, H5O_INFO_BASIC) < 0) return HADDR_UNDEF;
    return info.addr;
}

static inline haddr_t zoo_h5_undefined_address(void) { return HADDR_UNDEF; }

/// Where a dataset keeps its raw data. `layout`: 0 compact, 1 contiguous, 2 chunked, 3 other
/// (virtual); `offset`: file address of contiguous data (HADDR_UNDEF when not allocated);
/// `external`: number of external raw-data files (data kept in other files). Returns < 0 on error.
static inline int zoo_h5_dataset_storage(hid_t dataset, int *layout, haddr_t *offset, int *external) {
    hid_t plist = H5Dget_create_plist(dataset);
    if (plist < 0) return -1;
    H5D_layout_t kind = H5Pget_layout(plist);
    int files = H5Pget_external_count(plist);
    H5Pclose(plist);
    if (kind < 0 || files < 0) return -1;
    *layout = kind == H5D_COMPACT ? 0 : kind == H5D_CONTIGUOUS ? 1 : kind == H5D_CHUNKED ? 2 : 3;
    *external = files;
    *offset = H5Dget_offset(dataset);
    return 0;
}

typedef struct {
    char *buffer;
    size_t length;
    int found;
} zoo_h5_error_text;

static inline herr_t zoo_h5_error_visitor(unsigned n, const H5E_error2_t *error, void *data) {
    zoo_h5_error_text *text = (zoo_h5_error_text *)data;
    (void)n;
    if (text->found || error == NULL) return 0;
    text->found = 1;
    snprintf(text->buffer, text->length, "%s", error->desc ? error->desc : "");
    return 0;
}

/// Copies the description of the most specific error on libhdf5's error stack
/// (the one where the failure was detected) into `buffer`; empty when there is none.
static inline void zoo_h5_innermost_error(char *buffer, size_t length) {
    zoo_h5_error_text text = {buffer, length, 0};
    if (length > 0) buffer[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, zoo_h5_error_visitor, &text);
}

// Opening an HDF5 file that lives in memory (a `model.weights.h5` stored inside a
// `.keras` zip) without copying it: the core driver normally copies the image once
// into the property list and again into the driver. These callbacks hand out the
// caller's read-only buffer for every "allocation" and turn every copy into a no-op,
// which is valid because the file is opened read-only and never written or resized.
// The caller keeps the buffer alive until the file id is closed.
typedef struct {
    void *buffer;
    size_t length;
    int references;
} zoo_h5_image;

static inline void *zoo_h5_image_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
    zoo_h5_image *image = (zoo_h5_image *)udata;
    (void)op;
    if (image == NULL || size != image->length) return NULL;
    return image->buffer;
}

static inline void *zoo_h5_image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op,
                                        void *udata) {
    (void)size; (void)op; (void)udata;
    return dest == src ? dest : NULL;
}

static inline void *zoo_h5_image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)ptr; (void)size; (void)op; (void)udata;
    return NULL;
}

static inline herr_t zoo_h5_image_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
    (void)ptr; (void)op; (void)udata;
    return 0;
}

static inline void *zoo_h5_image_udata_copy(void *udata) {
    zoo_h5_image *image = (zoo_h5_image *)udata;
    image->references += 1;
    return udata;
}

static inline herr_t zoo_h5_image_udata_free(void *udata) {
    zoo_h5_image *image = (zoo_h5_image *)udata;
    image->references -= 1;
    if (image->references <= 0) free(image);
    return 0;
}

/// Opens `length` bytes at `buffer` as a read-only HDF5 file, without copying them.
/// `name` must be unique among open in-memory files (libhdf5 treats two core-driver
/// files with the same name as one file). Returns a negative id on failure.
static inline hid_t zoo_h5_open_image_readonly(const void *buffer, size_t length, const char *name) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    zoo_h5_image *image = (zoo_h5_image *)malloc(sizeof(zoo_h5_image));
    if (image == NULL) { H5Pclose(fapl); return -1; }
    image->buffer = (void *)buffer;
    image->length = length;
    image->references = 1;
    H5FD_file_image_callbacks_t callbacks = {
        zoo_h5_image_malloc, zoo_h5_image_memcpy, zoo_h5_image_realloc, zoo_h5_image_free,
        zoo_h5_image_udata_copy, zoo_h5_image_udata_free, image};
    hid_t file = -1;
    if (H5Pset_fapl_core(fapl, 64 * 1024, 0) >= 0 && H5Pset_file_image_callbacks(fapl, &callbacks) >= 0 &&
        H5Pset_file_image(fapl, (void *)buffer, length) >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0) {
        file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    }
    // The property list holds its own reference to `image` (udata_copy); drop ours.
    zoo_h5_image_udata_free(image);
    H5Pclose(fapl);
    return file;
}

/// Opens a file on disk read-only; closing the file id closes every object in it.
static inline hid_t zoo_h5_open_readonly(const char *path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    hid_t file = -1;
    if (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0) {
        // Read-only access needs no lock; some file systems refuse locks altogether.
        H5Pset_file_locking(fapl, 0, 1);
        file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    }
    H5Pclose(fapl);
    return file;
}

// --- Running libhdf5 in a child process -------------------------------------------
//
// libhdf5 (1.10) trusts a file's metadata: damaged files can make it crash, loop, or allocate
// gigabytes. zoo therefore reads HDF5 metadata only in a forked child process with a time and
// memory limit, which sends its findings back through a pipe; zoo's own process never calls
// libhdf5 on the file. These helpers do the process handling that Swift cannot express.

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <errno.h>

/// fork(2), which Swift's Glibc overlay does not offer.
static inline pid_t zoo_sandbox_fork(void) { return fork(); }

/// In the child: die silently on a crash (no inherited crash handlers, no core file), on
/// SIGALRM after `seconds`, and fail allocations beyond the current size plus `extra_bytes`.
static inline void zoo_sandbox_enter(unsigned seconds, size_t extra_bytes) {
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM, SIGPIPE, 0};
    sigset_t unblock;
    sigemptyset(&unblock);
    for (const int *number = fatal; *number != 0; number++) {
        signal(*number, SIG_DFL);
        sigaddset(&unblock, *number);
    }
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm != NULL) {
        if (fscanf(statm, "%ld", &pages) != 1) pages = 0;
        fclose(statm);
    }
    struct rlimit limit;
    if (pages > 0 && getrlimit(RLIMIT_AS, &limit) == 0) {
        rlim_t wanted = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (rlim_t)extra_bytes;
        if (limit.rlim_max == RLIM_INFINITY || wanted < limit.rlim_max) limit.rlim_cur = wanted;
        setrlimit(RLIMIT_AS, &limit);
    }
    alarm(seconds);
}

/// In the child: closes every file descriptor from 3 up except `keep` (the pipe to the parent),
/// so that pipes of other sandboxes forked at the same time are not held open here.
static inline void zoo_sandbox_close_other_descriptors(int keep) {
#ifdef SYS_close_range
    if (keep >= 3 && (keep == 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) == 0) &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0) {
        return;
    }
#endif
    long maximum = sysconf(_SC_OPEN_MAX);
    if (maximum < 0 || maximum > 65536) maximum = 65536;
    for (int descriptor = 3; descriptor < maximum; descriptor++) {
        if (descriptor != keep) close(descriptor);
    }
}

/// In the child: leave at once, without atexit handlers or stdio flushing (they belong to the parent).
static inline void zoo_sandbox_exit(int status) { _exit(status); }

/// In the parent: waits for the child. Returns its exit status (>= 0), or -signal when a signal
/// killed it, or -1000 when waiting failed. `cpu_seconds` receives the CPU time the child used
/// (a child stopped by its alarm after using little CPU was blocked, not looping).
static inline int zoo_sandbox_wait(pid_t child, double *cpu_seconds) {
    int status = 0;
    struct rusage usage;
    *cpu_seconds = 0;
    while (wait4(child, &status, 0, &usage) < 0) {
        if (errno != EINTR) return -1000;
    }
    *cpu_seconds = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                   (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return -1000;
}

static inline int zoo_sandbox_sigalrm(void) { return SIGALRM; }

#endif
