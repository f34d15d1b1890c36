/// Whose arithmetic a resize reproduces.
///
/// The two frameworks agree when enlarging with bilinear interpolation (both use half-pixel
/// centers) and part ways when shrinking (torchvision filters, TensorFlow does not) and for
/// nearest neighbour (different rounding rules).
import ZooTensor

public enum ResizeConvention: String, Sendable, Hashable, CaseIterable, Codable {
    /// What `tf.image.resize(..., antialias=False)` and therefore `keras.layers.Resizing`,
    /// `keras.ops.image.resize` and `keras.preprocessing.image.smart_resize` compute on the
    /// TensorFlow backend.
    ///
    /// Bilinear: output index `i` samples input coordinate `(i + 0.5) * in / out - 0.5`,
    /// interpolating its two neighbours, coordinates clamped to the image; no antialiasing, so
    /// a 224 → 96 shrink reads only two of every ~2.3 input pixels per axis. Nearest: input
    /// index `floor((i + 0.5) * in / out)`, clamped (TensorFlow's `half_pixel_centers`).
    case tensorflow
    /// What `torchvision.transforms.v2.functional.resize` computes on float tensors with its
    /// default `antialias=True` (`torch.nn.functional.interpolate(..., antialias=True,
    /// align_corners=False)`).
    ///
    /// Bilinear: a triangle filter whose support widens by `in / out` when shrinking (PIL's
    /// method), centred at `(i + 0.5) * in / out`, its weights renormalised at the borders;
    /// when enlarging it equals TensorFlow's bilinear. Nearest: input index
    /// `floor(i * in / out)`, clamped (PyTorch's legacy `"nearest"`, not `"nearest-exact"`).
    case torchvision
}

/// How ``FloatImage/resized(height:width:method:)`` computes each output pixel.
public enum ResizeMethod: Sendable, Hashable {
    /// Bilinear interpolation (with antialiasing when shrinking under `.torchvision`).
    case bilinear(ResizeConvention)
    /// Nearest neighbour: every output value is an input value.
    case nearest(ResizeConvention)

    /// Keras's `Resizing` default: bilinear, TensorFlow's arithmetic.
    public static let keras = ResizeMethod.bilinear(.tensorflow)
    /// torchvision's `Resize` default: bilinear with antialiasing.
    public static let torchvision = ResizeMethod.bilinear(.torchvision)
}

extension FloatImage {
    /// The image resized to `height` x `width` (any sizes, either way, aspect ratio not kept).
    ///
    /// Matches TensorFlow's or torchvision's resize on the same float input to within float
    /// rounding (a few 1e-5 on values in `[0, 255]`; nearest neighbour exactly). Separable:
    /// per-axis source indices and weights are computed once per call, then a horizontal and
    /// a vertical pass; an axis whose size does not change is copied.
    public func resized(height: Int, width: Int, method: ResizeMethod = .keras) -> FloatImage {
        precondition(height > 0 && width > 0, "a resize needs a positive size, got \(height)x\(width)")
        if height == self.height && width == self.width { return self }
        let rows = AxisResampler(method: method, input: self.height, output: height)
        let columns = AxisResampler(method: method, input: self.width, output: width)
        return resample(rows: rows, columns: columns)
    }

    /// The image resized so that its shorter side is `size`, keeping the aspect ratio the way
    /// torchvision's `Resize(size)` with an integer size does: the longer side becomes
    /// `Int(size * long / short)` (truncated).
    public func resizedShorterSide(to size: Int, method: ResizeMethod = .torchvision) -> FloatImage {
        let (newHeight, newWidth) = FloatImage.shorterSideSize(height: height, width: width, shorterSide: size)
        return resized(height: newHeight, width: newWidth, method: method)
    }

    /// torchvision's output size for `Resize(size)` with an integer size.
    static func shorterSideSize(height: Int, width: Int, shorterSide size: Int) -> (height: Int, width: Int) {
        precondition(size > 0, "the shorter side must be positive, got \(size)")
        let (short, long) = width <= height ? (width, height) : (height, width)
        let newLong = Int(Double(size) * Double(long) / Double(short))
        return width <= height ? (newLong, size) : (size, newLong)
    }

    /// The central `height` x `width` window, as torchvision's `CenterCrop` takes it: the top
    /// left corner is `round((H - height) / 2)`, `round((W - width) / 2)` with Python's
    /// round-half-to-even, and a crop larger than the image pads it with zeros first (the
    /// extra odd row or column goes to the bottom or right).
    public func centerCropped(height: Int, width: Int) -> FloatImage {
        precondition(height > 0 && width > 0, "a crop needs a positive size, got \(height)x\(width)")
        var image = self
        if height > image.height || width > image.width {
            let padTop = max(height - image.height, 0) / 2, padLeft = max(width - image.width, 0) / 2
            let paddedHeight = max(height, image.height), paddedWidth = max(width, image.width)
            image = image.padded(top: padTop, left: padLeft, height: paddedHeight, width: paddedWidth)
        }
        func anchor(_ extent: Int, _ crop: Int) -> Int { Int((Double(extent - crop) / 2).rounded(.toNearestOrEven)) }
        return image.cropped(top: anchor(image.height, height), left: anchor(image.width, width), height: height, width: width)
    }

    /// Keras's `keras.preprocessing.image.smart_resize`: the largest central window with the
    /// target aspect ratio (its size and offset truncated as Keras truncates them), resized to
    /// `height` x `width`, so the image is not distorted.
    public func smartResized(height: Int, width: Int, method: ResizeMethod = .keras) -> FloatImage {
        precondition(height > 0 && width > 0, "a resize needs a positive size, got \(height)x\(width)")
        let cropHeight = max(min(self.height, Int(Double(self.width * height) / Double(width))), 1)
        let cropWidth = max(min(self.width, Int(Double(self.height * width) / Double(height))), 1)
        let top = (self.height - cropHeight) / 2, left = (self.width - cropWidth) / 2
        return cropped(top: top, left: left, height: cropHeight, width: cropWidth).resized(height: height, width: width, method: method)
    }

    /// The window of `height` x `width` pixels whose top left pixel is `(top, left)`; the
    /// window must lie inside the image.
    public func cropped(top: Int, left: Int, height: Int, width: Int) -> FloatImage {
        precondition(top >= 0 && left >= 0 && height > 0 && width > 0 && top + height <= self.height && left + width <= self.width,
                     "crop \(height)x\(width) at (\(top), \(left)) does not fit in a \(self.height)x\(self.width) image")
        if top == 0 && left == 0 && height == self.height && width == self.width { return self }
        let rowLength = width * 3, sourceRowLength = self.width * 3
        let values = [Float](unsafeUninitializedCapacity: height * rowLength) { buffer, count in
            self.values.withUnsafeBufferPointer { source in
                for row in 0..<height {
                    let from = source.baseAddress! + (top + row) * sourceRowLength + left * 3
                    (buffer.baseAddress! + row * rowLength).initialize(from: from, count: rowLength)
                }
            }
            count = height * rowLength
        }
        return FloatImage(width: width, height: height, values: values)
    }

    /// The image placed at `(top, left)` on a zero canvas of `height` x `width`.
    func padded(top: Int, left: Int, height: Int, width: Int) -> FloatImage {
        var values = [Float](repeating: 0, count: height * width * 3)
        values.withUnsafeMutableBufferPointer { target in
            self.values.withUnsafeBufferPointer { source in
                for row in 0..<self.height {
                    let to = target.baseAddress! + ((top + row) * width + left) * 3
                    to.update(from: source.baseAddress! + row * self.width * 3, count: self.width * 3)
                }
            }
        }
        return FloatImage(width: width, height: height, values: values)
    }

    /// Separable resampling: columns first (each input row to the output width), then rows.
    func resample(rows: AxisResampler, columns: AxisResampler) -> FloatImage {
        let inputRowLength = width * 3
        let outputRowLength = columns.output * 3
        // Horizontal pass over every input row (or the input itself when the width is kept).
        var horizontal: [Float] = []
        if !columns.isIdentity {
            horizontal = [Float](unsafeUninitializedCapacity: height * outputRowLength) { buffer, count in
                values.withUnsafeBufferPointer { source in
                    columns.withTables { starts, counts, weights, taps in
                        for row in 0..<height {
                            let input = source.baseAddress! + row * inputRowLength
                            let output = buffer.baseAddress! + row * outputRowLength
                            for x in 0..<columns.output {
                                let start = Int(starts[x]), n = Int(counts[x])
                                let w = weights.baseAddress! + x * taps
                                var pixel = input + start * 3
                                var (r, g, b) = (pixel[0] * w[0], pixel[1] * w[0], pixel[2] * w[0])
                                var k = 1
                                while k < n {
                                    pixel += 3
                                    r += pixel[0] * w[k]
                                    g += pixel[1] * w[k]
                                    b += pixel[2] * w[k]
                                    k += 1
                                }
                                output[x * 3] = r
                                output[x * 3 + 1] = g
                                output[x * 3 + 2] = b
                            }
                        }
                    }
                }
                count = height * outputRowLength
            }
        }
        let intermediate = columns.isIdentity ? values : horizontal
        if rows.isIdentity {
            return FloatImage(width: columns.output, height: height, values: intermediate)
        }
        // Vertical pass: each output row is a weighted sum of whole intermediate rows.
        let result = [Float](unsafeUninitializedCapacity: rows.output * outputRowLength) { buffer, count in
            intermediate.withUnsafeBufferPointer { source in
                rows.withTables { starts, counts, weights, taps in
                    for y in 0..<rows.output {
                        let start = Int(starts[y]), n = Int(counts[y])
                        let w = weights.baseAddress! + y * taps
                        let output = buffer.baseAddress! + y * outputRowLength
                        let first = source.baseAddress! + start * outputRowLength
                        switch n {
                        case 1 where w[0] == 1:
                            output.initialize(from: first, count: outputRowLength)
                        case 2:
                            let second = first + outputRowLength
                            let (w0, w1) = (w[0], w[1])
                            for i in 0..<outputRowLength { output[i] = first[i] * w0 + second[i] * w1 }
                        default:
                            let w0 = w[0]
                            for i in 0..<outputRowLength { output[i] = first[i] * w0 }
                            for k in 1..<max(n, 1) {
                                let line = first + k * outputRowLength, wk = w[k]
                                for i in 0..<outputRowLength { output[i] += line[i] * wk }
                            }
                        }
                    }
                }
            }
            count = rows.output * outputRowLength
        }
        return FloatImage(width: columns.output, height: rows.output, values: result)
    }
}

/// One axis of a separable resize: for each output index, a run of consecutive input indices
/// `start ..< start + count` and their weights (`taps` slots per output, unused ones zero).
struct AxisResampler: Sendable {
    let input: Int
    let output: Int
    let taps: Int
    private(set) var starts: [Int32]
    private(set) var counts: [Int32]
    private(set) var weights: [Float]
    /// Every output index reads exactly its own input index with weight 1.
    let isIdentity: Bool

    init(method: ResizeMethod, input: Int, output: Int) {
        precondition(input > 0 && output > 0, "resize sizes must be positive, got \(input) → \(output)")
        self.input = input
        self.output = output
        switch method {
        case .nearest(let convention):
            taps = 1
            weights = [Float](repeating: 1, count: output)
            counts = [Int32](repeating: 1, count: output)
            starts = (0..<output).map { Int32(AxisResampler.nearestIndex($0, input: input, output: output, convention: convention)) }
        case .bilinear(.tensorflow):
            taps = 2
            (starts, counts, weights) = AxisResampler.tensorflowBilinear(input: input, output: output)
        case .bilinear(.torchvision):
            (taps, starts, counts, weights) = AxisResampler.torchvisionBilinear(input: input, output: output)
        }
        let (starts, counts, weights, taps) = (starts, counts, weights, taps)
        isIdentity = input == output && (0..<output).allSatisfy { index in
            starts[index] == Int32(index) && counts[index] == 1 && weights[index * taps] == 1
        }
    }

    func withTables<R>(_ body: (UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Float>, Int) -> R) -> R {
        starts.withUnsafeBufferPointer { s in
            counts.withUnsafeBufferPointer { c in
                weights.withUnsafeBufferPointer { w in body(s, c, w, taps) }
            }
        }
    }

    /// The input index nearest-neighbour resizing reads for output index `index`, in single
    /// precision as both frameworks compute it.
    static func nearestIndex(_ index: Int, input: Int, output: Int, convention: ResizeConvention) -> Int {
        switch convention {
        case .tensorflow:
            // resize_nearest_neighbor_op.cc, half_pixel_centers: floor((i + 0.5) * scale).
            let scale = Float(input) / Float(output)
            return max(0, min(Int(((Float(index) + 0.5) * scale).rounded(.down)), input - 1))
        case .torchvision:
            // UpSample.h nearest_idx: identity and exact doubling are special-cased.
            if output == input { return index }
            if output == 2 * input { return index >> 1 }
            let scale = Float(input) / Float(output)
            return min(Int((Float(index) * scale).rounded(.down)), input - 1)
        }
    }

    /// resize_bilinear_op.cc with half-pixel centers: two neighbours, clamped.
    static func tensorflowBilinear(input: Int, output: Int) -> ([Int32], [Int32], [Float]) {
        let scale = Float(input) / Float(output)
        var starts = [Int32](repeating: 0, count: output), counts = [Int32](repeating: 1, count: output)
        var weights = [Float](repeating: 0, count: 2 * output)
        for index in 0..<output {
            let position = (Float(index) + 0.5) * scale - 0.5
            let floorPosition = position.rounded(.down)
            let lower = max(Int(floorPosition), 0)
            let upper = min(Int(position.rounded(.up)), input - 1)
            let lerp = position - floorPosition
            starts[index] = Int32(lower)
            if upper == lower {
                weights[2 * index] = 1
            } else {
                counts[index] = 2
                weights[2 * index] = 1 - lerp
                weights[2 * index + 1] = lerp
            }
        }
        return (starts, counts, weights)
    }

    /// PyTorch's separable antialiased bilinear (UpSampleKernel.cpp, `_compute_weights_aa`):
    /// a triangle filter of support `max(scale, 1)` around `(i + 0.5) * scale`, normalised.
    /// The mix of single and double precision follows the C++ so that the same input pixels
    /// are picked at the boundaries of each window.
    static func torchvisionBilinear(input: Int, output: Int) -> (Int, [Int32], [Int32], [Float]) {
        let scale = Float(input) / Float(output)
        let support: Float = scale >= 1 ? scale : 1
        let inverseScale: Float = scale >= 1 ? Float(1 / Double(scale)) : 1
        let taps = Int(support.rounded(.up)) * 2 + 1
        var starts = [Int32](repeating: 0, count: output), counts = [Int32](repeating: 0, count: output)
        var weights = [Float](repeating: 0, count: output * taps)
        for index in 0..<output {
            let center = Float(Double(scale) * (Double(index) + 0.5))
            let low = max(Int(Double(center - support) + 0.5), 0)
            let size = min(Int(Double(center + support) + 0.5), input) - low
            var total: Float = 0
            for j in 0..<size {
                let argument = Float((Double(Float(j + low) - center) + 0.5) * Double(inverseScale))
                let magnitude = abs(argument)
                let weight: Float = magnitude < 1 ? 1 - magnitude : 0
                weights[index * taps + j] = weight
                total += weight
            }
            if total != 0 {
                for j in 0..<size { weights[index * taps + j] /= total }
            }
            starts[index] = Int32(low)
            counts[index] = Int32(size)
        }
        return (taps, starts, counts, weights)
    }
}

/// Resizes to a fixed size (Keras `Resizing(height, width)`, torchvision `Resize((h, w))`).
public struct Resize: ImageTransform {
    public var height: Int
    public var width: Int
    public var method: ResizeMethod

    public init(height: Int, width: Int, method: ResizeMethod = .keras) {
        precondition(height > 0 && width > 0, "a resize needs a positive size, got \(height)x\(width)")
        self.height = height
        self.width = width
        self.method = method
    }

    /// A square resize.
    public init(size: Int, method: ResizeMethod = .keras) {
        self.init(height: size, width: size, method: method)
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        image.resized(height: height, width: width, method: method)
    }
}

/// Resizes so that the shorter side has a given length, keeping the aspect ratio
/// (torchvision `Resize(size)` with an integer size).
public struct ResizeShorterSide: ImageTransform {
    public var size: Int
    public var method: ResizeMethod

    public init(_ size: Int, method: ResizeMethod = .torchvision) {
        precondition(size > 0, "the shorter side must be positive, got \(size)")
        self.size = size
        self.method = method
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        image.resizedShorterSide(to: size, method: method)
    }
}

/// Takes the central window (torchvision `CenterCrop`, zero padding when the image is smaller).
public struct CenterCrop: ImageTransform {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        precondition(height > 0 && width > 0, "a crop needs a positive size, got \(height)x\(width)")
        self.height = height
        self.width = width
    }

    /// A square crop.
    public init(size: Int) {
        self.init(height: size, width: size)
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        image.centerCropped(height: height, width: width)
    }
}

/// Crops the largest central window with the target aspect ratio, then resizes
/// (Keras `keras.preprocessing.image.smart_resize` and `Resizing(crop_to_aspect_ratio=True)`).
public struct SmartResize: ImageTransform {
    public var height: Int
    public var width: Int
    public var method: ResizeMethod

    public init(height: Int, width: Int, method: ResizeMethod = .keras) {
        precondition(height > 0 && width > 0, "a resize needs a positive size, got \(height)x\(width)")
        self.height = height
        self.width = width
        self.method = method
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        image.smartResized(height: height, width: width, method: method)
    }
}
