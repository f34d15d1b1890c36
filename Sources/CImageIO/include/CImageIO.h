// JPEG (libjpeg-turbo) and PNG (libpng) decoding and PNG encoding for zoo.
// Both libraries report errors by longjmp, which must not cross Swift frames; these C functions
// catch them and return status codes with a message instead.
#ifndef ZOO_CIMAGEIO_H
#define ZOO_CIMAGEIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The most pixels an image may have (width * height); larger images are refused before any
/// pixel memory is allocated, so a small hostile file cannot make the decoder allocate gigabytes.
#define ZOO_IMAGE_MAX_PIXELS (1L << 26)
/// The most scans a progressive JPEG may have (libjpeg-turbo's advice against scan bombs).
#define ZOO_JPEG_MAX_SCANS 1000

typedef enum {
    ZOO_IMAGE_OK = 0,
    /// The bytes are neither a JPEG nor a PNG (by their magic bytes).
    ZOO_IMAGE_UNRECOGNIZED = 1,
    /// The library reported an error: corrupt or truncated data, or an unsupported feature.
    ZOO_IMAGE_CORRUPT = 2,
    /// The header declares more than ZOO_IMAGE_MAX_PIXELS pixels, or a zero width or height.
    ZOO_IMAGE_TOO_LARGE = 3,
    /// Memory allocation failed.
    ZOO_IMAGE_NO_MEMORY = 4,
    /// The caller's buffer is too small; width and height are set to what is needed.
    ZOO_IMAGE_BUFFER_TOO_SMALL = 5,
    /// Bad arguments (null pointers, bad dimensions or channel counts for the encoder).
    ZOO_IMAGE_INVALID_ARGUMENT = 6,
} zoo_image_status;

typedef enum {
    ZOO_IMAGE_FORMAT_UNKNOWN = 0,
    ZOO_IMAGE_FORMAT_JPEG = 1,
    ZOO_IMAGE_FORMAT_PNG = 2,
} zoo_image_format;

/// The format of `data` by its magic bytes (JPEG: FF D8 FF; PNG: the 8-byte signature).
zoo_image_format zoo_image_detect(const uint8_t *data, size_t size);

/// Reads only the header of a JPEG or PNG: its width and height. `message` (of `message_size`
/// bytes, may be NULL) receives a NUL-terminated description of any failure.
zoo_image_status zoo_image_header(
    const uint8_t *data, size_t size, int *width, int *height, char *message, size_t message_size);

/// Decodes a JPEG or PNG to 8-bit RGB, rows top to bottom, `width * height * 3` bytes.
/// Grayscale, palette, 16-bit, alpha (dropped), CMYK and YCCK inputs are converted.
///
/// When `*pixels` is NULL the buffer is allocated with malloc and returned in `*pixels` (the
/// caller frees it with zoo_image_free); otherwise `*pixels` is the caller's buffer of
/// `capacity` bytes, and ZOO_IMAGE_BUFFER_TOO_SMALL is returned (with the dimensions set) when
/// it cannot hold the image. On failure nothing is left allocated and `*pixels` is unchanged.
zoo_image_status zoo_image_decode(
    const uint8_t *data, size_t size, uint8_t **pixels, size_t capacity, int *width, int *height,
    char *message, size_t message_size);

/// Encodes 8-bit RGB (`channels` 3) or RGBA (`channels` 4) pixels, rows top to bottom with no
/// padding, as a PNG in a malloc'd buffer (`*png`, `*png_size`; free with zoo_image_free).
/// `compression_level` is zlib's 0...9, or -1 for libpng's default.
zoo_image_status zoo_png_encode(
    const uint8_t *pixels, int width, int height, int channels, int compression_level, uint8_t **png,
    size_t *png_size, char *message, size_t message_size);

/// Frees a buffer returned by zoo_image_decode or zoo_png_encode.
void zoo_image_free(void *buffer);

/// The libjpeg-turbo and libpng versions linked, e.g. "libjpeg 62 (turbo 2.1.5), libpng 1.6.39".
const char *zoo_image_library_versions(void);

#ifdef __cplusplus
}
#endif

#endif
