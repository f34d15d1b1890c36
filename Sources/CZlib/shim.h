// zlib (Debian zlib1g-dev): inflate/deflate for .npz archives and zip entries.
#ifndef ZOO_CZLIB_SHIM_H
#define ZOO_CZLIB_SHIM_H

#include <zlib.h>

/// `inflateInit2` is a macro over `inflateInit2_`; Swift cannot call it directly.
static inline int zoo_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
/// `deflateInit2` is a macro over `deflateInit2_`.
static inline int zoo_deflateInit2(z_streamp strm, int level, int windowBits) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}

#endif
