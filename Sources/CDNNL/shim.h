// oneDNN (Debian libdnnl-dev, C API) as seen from Swift.
// Macros that Swift cannot import are exposed as inline functions.
#ifndef ZOO_CDNNL_SHIM_H
#define ZOO_CDNNL_SHIM_H

#include <dnnl.h>

/// `DNNL_MEMORY_ALLOCATE`: ask oneDNN to allocate a memory object's buffer.
static inline void *zoo_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
/// `DNNL_MEMORY_NONE`: a memory object without a buffer.
static inline void *zoo_dnnl_memory_none(void) { return DNNL_MEMORY_NONE; }

// oneDNN's CPU runtime here is OpenMP (libgomp); these set and read its one thread pool.
// Declared here because gcc's omp.h is not on clang's include path.
extern void omp_set_num_threads(int);
extern int omp_get_max_threads(void);

#endif
