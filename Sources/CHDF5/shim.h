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

#endif
