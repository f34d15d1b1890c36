/// An RGB image with 8 bits per channel: rows from top to bottom, pixels from left to right,
/// channels red, green, blue (`[height, width, 3]`, channels-last), as files hold them.
public struct Image: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// `height * width * 3` bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "an RGB image of \(width)x\(height) needs \(width * height * 3) bytes")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The image as floats in `[0, 255]`, for transforms.
    public var floatImage: FloatImage {
        FloatImage(width: width, height: height, values: pixels.map(Float.init))
    }
}

/// An RGB image with float channels (`[height, width, 3]`, channels-last), values in `[0, 255]`
/// until preprocessing rescales them. Transforms and augmentation work on these.
public struct FloatImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var values: [Float]

    public init(width: Int, height: Int, values: [Float]) {
        precondition(values.count == width * height * 3, "an RGB image of \(width)x\(height) needs \(width * height * 3) values")
        self.width = width
        self.height = height
        self.values = values
    }

    /// Channel `c` of the pixel at `(row, column)`.
    @inlinable
    public subscript(row: Int, column: Int, channel: Int) -> Float {
        get { values[(row * width + column) * 3 + channel] }
        set { values[(row * width + column) * 3 + channel] = newValue }
    }
}
