// JPEG (libjpeg-turbo) and PNG (libpng) decoding and PNG encoding for zoo.
// Both libraries report errors by longjmp, which must not cross Swift frames; these C functions
// catch them and return status codes with a message instead.
#ifndef ZOO_CIMAGEIO_H
#define ZOO_CIMAGEIO_H

#endif
