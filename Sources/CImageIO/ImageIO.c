#include "CImageIO.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

// Errors: libjpeg and libpng report errors through callbacks that must not return. Ours copy
// the library's message and longjmp to a setjmp in the same C function that started the
// decoding, which frees what it allocated and returns a status code. No jump ever leaves this
// file, so none crosses a Swift frame. Variables written after setjmp and read after the jump
// are volatile.

static void set_message(char *message, size_t message_size, const char *format, ...) {
    if (message == NULL || message_size == 0) return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, message_size, format, arguments);
    va_end(arguments);
}

static int too_large(unsigned long width, unsigned long height) {
    return width == 0 || height == 0 || (unsigned long long)width * height > (unsigned long long)ZOO_IMAGE_MAX_PIXELS;
}

zoo_image_format zoo_image_detect(const uint8_t *data, size_t size) {
    if (data == NULL) return ZOO_IMAGE_FORMAT_UNKNOWN;
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ZOO_IMAGE_FORMAT_JPEG;
    if (size >= 8 && png_sig_cmp((png_const_bytep)data, 0, 8) == 0) return ZOO_IMAGE_FORMAT_PNG;
    return ZOO_IMAGE_FORMAT_UNKNOWN;
}

void zoo_image_free(void *buffer) { free(buffer); }

#define ZOO_STRINGIFY_(x) #x
#define ZOO_STRINGIFY(x) ZOO_STRINGIFY_(x)

const char *zoo_image_library_versions(void) {
#ifdef LIBJPEG_TURBO_VERSION
    return "libjpeg-turbo " ZOO_STRINGIFY(LIBJPEG_TURBO_VERSION) " (libjpeg API " ZOO_STRINGIFY(JPEG_LIB_VERSION)
           "), libpng " PNG_LIBPNG_VER_STRING;
#else
    return "libjpeg " ZOO_STRINGIFY(JPEG_LIB_VERSION) ", libpng " PNG_LIBPNG_VER_STRING;
#endif
}

// MARK: - JPEG

struct jpeg_error_context {
    struct jpeg_error_mgr manager;  // first, so that cinfo->err points at the context
    jmp_buf jump;
    char text[JMSG_LENGTH_MAX + 64];
};

static void jpeg_fail(j_common_ptr cinfo) {
    struct jpeg_error_context *context = (struct jpeg_error_context *)cinfo->err;
    context->manager.format_message(cinfo, context->text);
    longjmp(context->jump, 1);
}

// Warnings (level -1) are mostly corrupt data that libjpeg would paper over: a truncated file
// gets a fake end marker and gray rows, bad Huffman data is skipped. A reader of training data
// wants to know, so these stop decoding like errors. The few warnings that leave every pixel
// intact are let through: stray bytes between marker segments (common in files from old
// cameras and editors), an unknown JFIF revision or Adobe transform code, and a bad ICC
// marker (profiles are not used). Trace messages (level >= 0) are ignored.
static void jpeg_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    switch (cinfo->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:
    case JWRN_JFIF_MAJOR:
    case JWRN_ADOBE_XFORM:
    case JWRN_BOGUS_ICC:
        return;
    default:
        jpeg_fail(cinfo);
    }
}

static void jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

// Stops progressive JPEGs with absurdly many scans, which take very long to decode.
static void jpeg_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    int scan = ((j_decompress_ptr)cinfo)->input_scan_number;
    if (scan > ZOO_JPEG_MAX_SCANS) {
        struct jpeg_error_context *context = (struct jpeg_error_context *)cinfo->err;
        snprintf(context->text, sizeof context->text, "progressive JPEG has more than %d scans", ZOO_JPEG_MAX_SCANS);
        longjmp(context->jump, 1);
    }
}

static uint8_t multiply255(unsigned a, unsigned b) { return (uint8_t)((a * b + 127) / 255); }

static zoo_image_status jpeg_decode(
    const uint8_t *data, size_t size, int header_only, uint8_t **pixels, size_t capacity, int *width, int *height,
    char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_context error;
    struct jpeg_progress_mgr progress;
    uint8_t *volatile allocated = NULL;
    uint8_t *volatile row = NULL;

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = jpeg_fail;
    error.manager.emit_message = jpeg_message;
    error.manager.output_message = jpeg_silent;
    error.text[0] = '\0';
    if (setjmp(error.jump)) {
        set_message(message, message_size, "corrupt JPEG: %s", error.text);
        jpeg_destroy_decompress(&cinfo);
        free(allocated);
        free(row);
        return ZOO_IMAGE_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    memset(&progress, 0, sizeof progress);
    progress.progress_monitor = jpeg_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    unsigned long w = cinfo.image_width, h = cinfo.image_height;
    if (too_large(w, h)) {
        set_message(message, message_size, "JPEG of %lux%lu pixels: refused (zero, or over %ld pixels)", w, h,
            (long)ZOO_IMAGE_MAX_PIXELS);
        jpeg_destroy_decompress(&cinfo);
        return ZOO_IMAGE_TOO_LARGE;
    }
    *width = (int)w;
    *height = (int)h;
    if (header_only) {
        jpeg_destroy_decompress(&cinfo);
        return ZOO_IMAGE_OK;
    }

    // Grayscale, YCbCr and RGB come out as RGB from libjpeg; CMYK and YCCK as CMYK, which we
    // convert below.
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;

    size_t needed = (size_t)w * h * 3;
    uint8_t *output;
    if (*pixels != NULL) {
        if (capacity < needed) {
            set_message(message, message_size, "buffer of %zu bytes cannot hold a %lux%lu RGB image", capacity, w, h);
            jpeg_destroy_decompress(&cinfo);
            return ZOO_IMAGE_BUFFER_TOO_SMALL;
        }
        output = *pixels;
    } else {
        allocated = malloc(needed);
        if (allocated == NULL) {
            set_message(message, message_size, "cannot allocate %zu bytes for a %lux%lu image", needed, w, h);
            jpeg_destroy_decompress(&cinfo);
            return ZOO_IMAGE_NO_MEMORY;
        }
        output = allocated;
    }

    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width != w || cinfo.output_height != h || cinfo.output_components != (cmyk ? 4 : 3)) {
        snprintf(error.text, sizeof error.text, "unexpected output of %ux%u with %d components", cinfo.output_width,
            cinfo.output_height, cinfo.output_components);
        longjmp(error.jump, 1);
    }
    if (cmyk) {
        row = malloc((size_t)w * 4);
        if (row == NULL) {
            snprintf(error.text, sizeof error.text, "out of memory");
            longjmp(error.jump, 1);
        }
    }
    // Adobe's CMYK JPEGs store inverted values (255 = no ink), as Photoshop writes them.
    int inverted = cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *destination = output + (size_t)cinfo.output_scanline * w * 3;
        JSAMPROW target = cmyk ? row : destination;
        if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) {
            snprintf(error.text, sizeof error.text, "decoder stopped at row %u", cinfo.output_scanline);
            longjmp(error.jump, 1);
        }
        if (cmyk) {
            for (unsigned long x = 0; x < w; x++) {
                unsigned c = row[4 * x], m = row[4 * x + 1], y = row[4 * x + 2], k = row[4 * x + 3];
                if (!inverted) {
                    c = 255 - c;
                    m = 255 - m;
                    y = 255 - y;
                    k = 255 - k;
                }
                destination[3 * x] = multiply255(c, k);
                destination[3 * x + 1] = multiply255(m, k);
                destination[3 * x + 2] = multiply255(y, k);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    if (allocated != NULL) *pixels = allocated;
    return ZOO_IMAGE_OK;
}

// MARK: - PNG

struct png_error_context {
    jmp_buf jump;
    char text[256];
};

struct png_source {
    const uint8_t *data;
    size_t size;
    size_t offset;
};

static void png_fail(png_structp png, png_const_charp text) {
    struct png_error_context *context = (struct png_error_context *)png_get_error_ptr(png);
    snprintf(context->text, sizeof context->text, "%s", text);
    longjmp(context->jump, 1);
}

// Warnings (bad ancillary chunks such as a known-incorrect sRGB profile) do not affect pixels.
static void png_warn(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void png_read_memory(png_structp png, png_bytep out, size_t length) {
    struct png_source *source = (struct png_source *)png_get_io_ptr(png);
    if (length > source->size - source->offset) {
        struct png_error_context *context = (struct png_error_context *)png_get_error_ptr(png);
        snprintf(context->text, sizeof context->text, "truncated: the file ends after %zu bytes, inside a chunk",
            source->size);
        longjmp(context->jump, 1);
    }
    memcpy(out, source->data + source->offset, length);
    source->offset += length;
}

static zoo_image_status png_decode(
    const uint8_t *data, size_t size, int header_only, uint8_t **pixels, size_t capacity, int *width, int *height,
    char *message, size_t message_size) {
    struct png_error_context error;
    struct png_source source = {data, size, 0};
    uint8_t *volatile allocated = NULL;
    png_bytep *volatile rows = NULL;
    png_infop info = NULL;

    error.text[0] = '\0';
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, png_fail, png_warn);
    if (png == NULL) {
        set_message(message, message_size, "cannot create a PNG reader");
        return ZOO_IMAGE_NO_MEMORY;
    }
    info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(message, message_size, "cannot create a PNG reader");
        return ZOO_IMAGE_NO_MEMORY;
    }
    if (setjmp(error.jump)) {
        set_message(message, message_size, "corrupt PNG: %s", error.text);
        png_destroy_read_struct(&png, &info, NULL);
        free(allocated);
        free(rows);
        return ZOO_IMAGE_CORRUPT;
    }
    png_set_read_fn(png, &source, png_read_memory);
    png_read_info(png, info);

    png_uint_32 w = 0, h = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, NULL, NULL, NULL);
    if (too_large(w, h)) {
        set_message(message, message_size, "PNG of %lux%lu pixels: refused (zero, or over %ld pixels)",
            (unsigned long)w, (unsigned long)h, (long)ZOO_IMAGE_MAX_PIXELS);
        png_destroy_read_struct(&png, &info, NULL);
        return ZOO_IMAGE_TOO_LARGE;
    }
    *width = (int)w;
    *height = (int)h;
    if (header_only) {
        png_destroy_read_struct(&png, &info, NULL);
        return ZOO_IMAGE_OK;
    }

    // To 8-bit RGB: palette to RGB, 1/2/4-bit gray to 8 bits, 16 bits scaled (rounded) to 8,
    // gray to RGB, alpha dropped (as PIL's convert("RGB") does), including the alpha libpng's
    // expansion makes of a transparency (tRNS) chunk. Gamma and color profiles are ignored.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_scale_16(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3) {
        snprintf(error.text, sizeof error.text, "unexpected output of %d channels of %d bits",
            png_get_channels(png, info), png_get_bit_depth(png, info));
        longjmp(error.jump, 1);
    }

    size_t needed = (size_t)w * h * 3;
    uint8_t *output;
    if (*pixels != NULL) {
        if (capacity < needed) {
            set_message(message, message_size, "buffer of %zu bytes cannot hold a %lux%lu RGB image", capacity,
                (unsigned long)w, (unsigned long)h);
            png_destroy_read_struct(&png, &info, NULL);
            return ZOO_IMAGE_BUFFER_TOO_SMALL;
        }
        output = *pixels;
    } else {
        allocated = malloc(needed);
        if (allocated == NULL) {
            set_message(message, message_size, "cannot allocate %zu bytes for a %lux%lu image", needed,
                (unsigned long)w, (unsigned long)h);
            png_destroy_read_struct(&png, &info, NULL);
            return ZOO_IMAGE_NO_MEMORY;
        }
        output = allocated;
    }
    rows = malloc(sizeof(png_bytep) * h);
    if (rows == NULL) {
        snprintf(error.text, sizeof error.text, "out of memory");
        longjmp(error.jump, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = output + (size_t)y * w * 3;
    png_read_image(png, rows);
    // Reads up to IEND, so a file cut after its image data is still reported.
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    if (allocated != NULL) *pixels = allocated;
    return ZOO_IMAGE_OK;
}

// MARK: - Entry points

static zoo_image_status decode(
    const uint8_t *data, size_t size, int header_only, uint8_t **pixels, size_t capacity, int *width, int *height,
    char *message, size_t message_size) {
    if (message != NULL && message_size > 0) message[0] = '\0';
    if (width == NULL || height == NULL || (!header_only && pixels == NULL)) {
        set_message(message, message_size, "null argument");
        return ZOO_IMAGE_INVALID_ARGUMENT;
    }
    switch (zoo_image_detect(data, size)) {
    case ZOO_IMAGE_FORMAT_JPEG:
        return jpeg_decode(data, size, header_only, pixels, capacity, width, height, message, message_size);
    case ZOO_IMAGE_FORMAT_PNG:
        return png_decode(data, size, header_only, pixels, capacity, width, height, message, message_size);
    default:
        set_message(message, message_size, "not a JPEG or PNG image");
        return ZOO_IMAGE_UNRECOGNIZED;
    }
}

zoo_image_status zoo_image_header(
    const uint8_t *data, size_t size, int *width, int *height, char *message, size_t message_size) {
    return decode(data, size, 1, NULL, 0, width, height, message, message_size);
}

zoo_image_status zoo_image_decode(
    const uint8_t *data, size_t size, uint8_t **pixels, size_t capacity, int *width, int *height, char *message,
    size_t message_size) {
    return decode(data, size, 0, pixels, capacity, width, height, message, message_size);
}

// MARK: - PNG encoding

struct png_sink {
    uint8_t *data;
    size_t size;
    size_t capacity;
};

static void png_write_memory(png_structp png, png_bytep bytes, size_t length) {
    struct png_sink *sink = (struct png_sink *)png_get_io_ptr(png);
    if (length > sink->capacity - sink->size) {
        size_t capacity = sink->capacity < 4096 ? 4096 : sink->capacity;
        while (length > capacity - sink->size) {
            if (capacity > SIZE_MAX / 2) png_error(png, "PNG output too large");
            capacity *= 2;
        }
        uint8_t *grown = realloc(sink->data, capacity);
        if (grown == NULL) png_error(png, "out of memory");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, bytes, length);
    sink->size += length;
}

static void png_flush_memory(png_structp png) { (void)png; }

zoo_image_status zoo_png_encode(
    const uint8_t *pixels, int width, int height, int channels, int compression_level, uint8_t **png_out,
    size_t *png_size, char *message, size_t message_size) {
    if (message != NULL && message_size > 0) message[0] = '\0';
    if (pixels == NULL || png_out == NULL || png_size == NULL || (channels != 3 && channels != 4) ||
        compression_level < -1 || compression_level > 9) {
        set_message(message, message_size, "invalid arguments: need RGB or RGBA pixels and a level of -1...9");
        return ZOO_IMAGE_INVALID_ARGUMENT;
    }
    if (width <= 0 || height <= 0 || too_large((unsigned long)width, (unsigned long)height)) {
        set_message(message, message_size, "cannot encode an image of %dx%d pixels", width, height);
        return ZOO_IMAGE_INVALID_ARGUMENT;
    }
    struct png_error_context error;
    struct png_sink sink = {NULL, 0, 0};
    struct png_sink *volatile sink_pointer = &sink;
    error.text[0] = '\0';
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, png_fail, png_warn);
    if (png == NULL) {
        set_message(message, message_size, "cannot create a PNG writer");
        return ZOO_IMAGE_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        set_message(message, message_size, "cannot create a PNG writer");
        return ZOO_IMAGE_NO_MEMORY;
    }
    if (setjmp(error.jump)) {
        set_message(message, message_size, "PNG encoding failed: %s", error.text);
        png_destroy_write_struct(&png, &info);
        free(sink_pointer->data);
        return ZOO_IMAGE_NO_MEMORY;
    }
    png_set_write_fn(png, &sink, png_write_memory, png_flush_memory);
    if (compression_level >= 0) png_set_compression_level(png, compression_level);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
        channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
        PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * stride));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    *png_out = sink.data;
    *png_size = sink.size;
    return ZOO_IMAGE_OK;
}
