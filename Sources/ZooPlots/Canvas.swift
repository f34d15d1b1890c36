import CCairo
import Foundation

/// An error drawing or writing a chart.
public struct PlotError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A colour with components in `[0, 1]`.
public struct Color: Sendable, Equatable {
    public var red, green, blue: Double

    public init(_ red: Double, _ green: Double, _ blue: Double) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// Distinguishable series colours (the Tableau 10 palette).
    public static let series: [Color] = [
        Color(0.122, 0.467, 0.706), Color(1.0, 0.498, 0.055), Color(0.173, 0.627, 0.173), Color(0.839, 0.153, 0.157),
        Color(0.580, 0.404, 0.741), Color(0.549, 0.337, 0.294), Color(0.890, 0.467, 0.761), Color(0.498, 0.498, 0.498),
    ]

    /// A light-to-dark blue ramp for `value` in `[0, 1]` (heatmaps).
    public static func ramp(_ value: Double) -> Color {
        let t = min(max(value, 0), 1)
        return Color(0.97 - 0.89 * t, 0.98 - 0.69 * t, 1.0 - 0.45 * t)
    }
}

/// A Cairo image surface with the drawing operations the charts use, written to PNG.
final class Canvas {
    let surface: OpaquePointer
    let context: OpaquePointer
    let width: Double, height: Double

    init(width: Int, height: Int) throws {
        guard width > 0, height > 0, width <= 8192, height <= 8192 else { throw PlotError("a chart of \(width)x\(height) pixels is not drawable") }
        surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(width), Int32(height))
        guard cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS else { throw PlotError("Cairo could not create a \(width)x\(height) surface") }
        context = cairo_create(surface)
        self.width = Double(width)
        self.height = Double(height)
        fill(Color(1, 1, 1), x: 0, y: 0, width: self.width, height: self.height)
        cairo_select_font_face(context, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
    }

    deinit {
        cairo_destroy(context)
        cairo_surface_destroy(surface)
    }

    func setColor(_ color: Color, alpha: Double = 1) {
        cairo_set_source_rgba(context, color.red, color.green, color.blue, alpha)
    }

    func fill(_ color: Color, x: Double, y: Double, width: Double, height: Double) {
        setColor(color)
        cairo_rectangle(context, x, y, width, height)
        cairo_fill(context)
    }

    func strokeRectangle(_ color: Color, x: Double, y: Double, width: Double, height: Double, lineWidth: Double = 1) {
        setColor(color)
        cairo_set_line_width(context, lineWidth)
        cairo_rectangle(context, x, y, width, height)
        cairo_stroke(context)
    }

    func line(_ points: [(Double, Double)], color: Color, width: Double = 2, dashed: Bool = false) {
        guard let first = points.first else { return }
        setColor(color)
        cairo_set_line_width(context, width)
        if dashed {
            let pattern: [Double] = [6, 4]
            cairo_set_dash(context, pattern, 2, 0)
        }
        cairo_move_to(context, first.0, first.1)
        for point in points.dropFirst() { cairo_line_to(context, point.0, point.1) }
        cairo_stroke(context)
        cairo_set_dash(context, nil, 0, 0)
    }

    func circle(_ x: Double, _ y: Double, radius: Double, color: Color) {
        setColor(color)
        cairo_arc(context, x, y, radius, 0, 2 * .pi)
        cairo_fill(context)
    }

    /// Text placed so that the point `anchor` of its box lies at `(x, y)`: (0, 0) is the
    /// top left, (0.5, 0.5) the centre, (1, 1) the bottom right. `rotation` turns it about that
    /// point (radians, clockwise).
    func text(_ string: String, x: Double, y: Double, size: Double = 13, color: Color = Color(0.15, 0.15, 0.15),
              anchor: (Double, Double) = (0, 0), rotation: Double = 0, bold: Bool = false) {
        cairo_save(context)
        cairo_select_font_face(context, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(context, size)
        var extents = cairo_text_extents_t()
        cairo_text_extents(context, string, &extents)
        setColor(color)
        cairo_translate(context, x, y)
        cairo_rotate(context, rotation)
        cairo_move_to(context, -extents.width * anchor.0 - extents.x_bearing, -(extents.y_bearing + extents.height * anchor.1))
        cairo_show_text(context, string)
        cairo_restore(context)
    }

    func textWidth(_ string: String, size: Double = 13) -> Double {
        cairo_set_font_size(context, size)
        var extents = cairo_text_extents_t()
        cairo_text_extents(context, string, &extents)
        return extents.x_advance
    }

    /// Draws an RGB picture with its top left at `(x, y)`, enlarged `scale` times (nearest
    /// neighbour, so pixels stay sharp).
    func draw(_ picture: ImageGrid.Picture, x: Double, y: Double, scale: Double) throws {
        guard picture.width > 0, picture.height > 0, picture.pixels.count == picture.width * picture.height * 3 else {
            throw PlotError("a picture of \(picture.width)x\(picture.height) needs \(picture.width * picture.height * 3) bytes")
        }
        let image = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(picture.width), Int32(picture.height))
        defer { cairo_surface_destroy(image) }
        cairo_surface_flush(image)
        let stride = Int(cairo_image_surface_get_stride(image))
        guard let data = cairo_image_surface_get_data(image) else { throw PlotError("Cairo gave no image buffer") }
        for row in 0..<picture.height {
            let line = data.advanced(by: row * stride).withMemoryRebound(to: UInt32.self, capacity: picture.width) { $0 }
            for column in 0..<picture.width {
                let p = (row * picture.width + column) * 3
                line[column] = UInt32(picture.pixels[p]) << 16 | UInt32(picture.pixels[p + 1]) << 8 | UInt32(picture.pixels[p + 2])
            }
        }
        cairo_surface_mark_dirty(image)
        cairo_save(context)
        cairo_translate(context, x, y)
        cairo_scale(context, scale, scale)
        cairo_set_source_surface(context, image, 0, 0)
        cairo_pattern_set_filter(cairo_get_source(context), CAIRO_FILTER_NEAREST)
        cairo_paint(context)
        cairo_restore(context)
    }

    /// Writes the PNG atomically: a temporary file beside `url`, then a rename.
    func writePNG(to url: URL) throws {
        cairo_surface_flush(surface)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        let status = cairo_surface_write_to_png(surface, temporary.path)
        guard status == CAIRO_STATUS_SUCCESS else {
            try? FileManager.default.removeItem(at: temporary)
            throw PlotError("\(url.path): Cairo could not write the PNG (\(String(cString: cairo_status_to_string(status))))")
        }
        guard rename(temporary.path, url.path) == 0 else {
            throw PlotError("\(url.path): could not move the PNG into place (\(String(cString: strerror(errno))))")
        }
    }
}
