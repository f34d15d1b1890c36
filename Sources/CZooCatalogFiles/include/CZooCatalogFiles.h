#ifndef CZOOCATALOGFILES_H
#define CZOOCATALOGFILES_H

#include <stddef.h>

/// One file of zoo's catalog folder, built into the binary: its path inside `zoo/` and its bytes.
struct zoo_catalog_file {
    const char *path;
    const unsigned char *bytes;
    size_t count;
};

/// How many catalog files are built in.
size_t zoo_catalog_file_count(void);

/// The built-in catalog file at `index` (in path order), or NULL past the end. Functions rather
/// than an exported array: Swift does not import arrays of unstated length.
const struct zoo_catalog_file *zoo_catalog_file_at(size_t index);

#endif
