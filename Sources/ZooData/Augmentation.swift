import Foundation
import ZooTensor

// Random augmentation with the parameter conventions of Keras's preprocessing layers
// (`keras.layers.RandomFlip`, `RandomRotation`, `RandomZoom`, `RandomTranslation`,
// `RandomContrast`, `RandomBrightness`) plus the CIFAR pad-and-crop recipe and
// `ImageDataGenerator`'s channel shift. The geometric ones build an ``AffineMap`` and
// go through one sampler, ``FloatImage/transformed(by:interpolation:fillMode:)``, which
// computes what TensorFlow's `ImageProjectiveTransformV3` (Keras's `affine_transform` on the
// TensorFlow backend) computes.

// MARK: - Parameters

/// A random amount's range, written as Keras writes its `factor` arguments: one number `f`
/// means `[-|f|, |f|]`, two numbers are the lower and upper bounds (in either order).
///
/// ```swift
/// RandomRotation(factor: 0.1)                      // Keras factor=0.1: ±36°
/// RandomRotation(factor: FactorRange(-0.1, 0.2))   // Keras factor=(-0.1, 0.2)
/// RandomZoom(heightFactor: .fixed(0.3))            // always zoom out by 30%
/// ```
public struct FactorRange: Sendable, Hashable, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    public var lower: Float
    public var upper: Float

    /// `[-|factor|, |factor|]`.
    public init(_ factor: Float) {
        lower = -abs(factor)
        upper = abs(factor)
    }

    /// `[min(a, b), max(a, b)]`.
    public init(_ a: Float, _ b: Float) {
        lower = min(a, b)
        upper = max(a, b)
    }

    public init(_ range: ClosedRange<Float>) {
        lower = range.lowerBound
        upper = range.upperBound
    }

    /// Always `value` (both bounds equal): for tests and for reproducing a fixed setting.
    public static func fixed(_ value: Float) -> FactorRange { FactorRange(value, value) }

    public init(floatLiteral value: Float) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(Float(value)) }

    /// No change.
    public var isZero: Bool { lower == 0 && upper == 0 }

    func checked(within bounds: ClosedRange<Float>, _ name: String) -> FactorRange {
        precondition(bounds.contains(lower) && bounds.contains(upper),
                     "\(name) must lie in \(bounds.lowerBound)...\(bounds.upperBound), got \(lower)...\(upper)")
        return self
    }
}

/// How pixels that come from outside the image are filled (Keras's `fill_mode`).
public enum FillMode: Sendable, Hashable {
    /// `(d c b a | a b c d | d c b a)`: reflection about the edge of the last pixel (Keras's
    /// default).
    case reflect
    /// `(a b c d | a b c d | a b c d)`: the image repeats.
    ///
    /// Interpolates across the seam between the last and the first pixel and wraps any number
    /// of times. TensorFlow differs in two places: within the seam (the last pixel's
    /// coordinate plus less than 1) it repeats an edge pixel instead of blending, and a
    /// period or more away its arithmetic (which divides by `size - 1`) sends bands of
    /// coordinates, a pixel wider per period, to the edge.
    case wrap
    /// `(k k k k | a b c d | k k k k)`: a constant (Keras `fill_mode="constant"` with
    /// `fill_value=k`). As in TensorFlow, bilinear sampling blends the image with `k` across
    /// the one-pixel band just outside it, and nearest sampling reads the image up to half a
    /// pixel beyond its edge.
    case constant(Float)
    /// `(a a a a | a b c d | d d d d)`: the nearest edge pixel.
    case nearest
}

/// How the affine sampler reads between pixels (Keras's `interpolation`).
public enum Interpolation: String, Sendable, Hashable, CaseIterable {
    /// The four neighbours, weighted by distance.
    case bilinear
    /// The nearest pixel, halves rounded away from zero (C's `round`, as TensorFlow does).
    case nearest
}

// MARK: - Affine sampling

/// An affine map from output pixel coordinates to input pixel coordinates, in Keras's and
/// TensorFlow's form: output pixel `(x, y)` (column, row; pixel centres at integers) reads the
/// input at `(a0 x + a1 y + a2, b0 x + b1 y + b2)`.
///
/// The constructors reproduce the matrices Keras's layers build.
public struct AffineMap: Sendable, Hashable {
    public var a0, a1, a2: Double
    public var b0, b1, b2: Double

    public init(a0: Double, a1: Double, a2: Double, b0: Double, b1: Double, b2: Double) {
        (self.a0, self.a1, self.a2, self.b0, self.b1, self.b2) = (a0, a1, a2, b0, b1, b2)
    }

    public static let identity = AffineMap(a0: 1, a1: 0, a2: 0, b0: 0, b1: 1, b2: 0)

    /// Rotation by `angle` radians about the image centre `((width - 1) / 2, (height - 1) / 2)`;
    /// positive angles turn the content counter-clockwise (Keras `RandomRotation`).
    public static func rotation(angle: Double, width: Int, height: Int) -> AffineMap {
        let (cosine, sine) = (cos(angle), sin(angle))
        let cx = 0.5 * Double(width - 1), cy = 0.5 * Double(height - 1)
        let (a0, a1, b0, b1) = (cosine, -sine, sine, cosine)
        return AffineMap(a0: a0, a1: a1, a2: cx - cx * a0 - cy * a1, b0: b0, b1: b1, b2: cy - cx * b0 - cy * b1)
    }

    /// Scaling about the image centre: output pixels read the input `x` (`y`) times further
    /// from the centre, so factors above 1 zoom out (Keras `RandomZoom`'s zoom `1 + factor`).
    public static func zoom(x: Double, y: Double, width: Int, height: Int) -> AffineMap {
        AffineMap(a0: x, a1: 0, a2: (Double(width) - 1) / 2 * (1 - x), b0: 0, b1: y, b2: (Double(height) - 1) / 2 * (1 - y))
    }

    /// Moves the content `x` pixels right and `y` pixels down (Keras `RandomTranslation`).
    public static func translation(x: Double, y: Double) -> AffineMap {
        AffineMap(a0: 1, a1: 0, a2: -x, b0: 0, b1: 1, b2: -y)
    }

    /// The map that applies `self`, then `next`, in one resampling (fewer interpolations than
    /// two separate passes; not what a chain of Keras layers computes at the borders).
    public func then(_ next: AffineMap) -> AffineMap {
        // output p → intermediate q = next(p) → input self(q).
        AffineMap(
            a0: a0 * next.a0 + a1 * next.b0, a1: a0 * next.a1 + a1 * next.b1, a2: a0 * next.a2 + a1 * next.b2 + a2,
            b0: b0 * next.a0 + b1 * next.b0, b1: b0 * next.a1 + b1 * next.b1, b2: b0 * next.a2 + b1 * next.b2 + b2)
    }
}

extension FloatImage {
    /// Resamples the image through `map` (inverse mapping: each output pixel reads the input
    /// where `map` sends it), at the same size, filling what comes from outside as `fillMode`
    /// says.
    ///
    /// This is TensorFlow's `ImageProjectiveTransformV3` for affine maps, which Keras's
    /// `RandomRotation`, `RandomZoom`, `RandomTranslation` and `keras.ops.image.affine_transform`
    /// call on the TensorFlow backend; only ``FillMode/wrap`` differs (see there).
    public func transformed(by map: AffineMap, interpolation: Interpolation = .bilinear, fillMode: FillMode = .reflect) -> FloatImage {
        let (w, h) = (width, height)
        let (a0, a1, a2) = (Float(map.a0), Float(map.a1), Float(map.a2))
        let (b0, b1, b2) = (Float(map.b0), Float(map.b1), Float(map.b2))
        if a1 == 0 && b0 == 0 {
            // Zoom and translation: the same arithmetic, done per axis.
            return transformedSeparably(x: (a0, a2), y: (b1, b2), interpolation: interpolation, fillMode: fillMode)
        }
        let lastX = Float(w - 1), lastY = Float(h - 1)
        let bilinear = interpolation == .bilinear
        let fill: Float, wraps: Bool
        switch fillMode {
        case .constant(let value): (fill, wraps) = (value, false)
        case .wrap: (fill, wraps) = (0, true)
        case .reflect, .nearest: (fill, wraps) = (0, false)
        }
        // Sample points with a coordinate outside these bounds read only the fill value.
        let (lowX, highX, lowY, highY): (Float, Float, Float, Float) = bilinear
            ? (-1, Float(w), -1, Float(h)) : (-0.5, Float(w) - 0.5, -0.5, Float(h) - 0.5)
        let result = [Float](unsafeUninitializedCapacity: values.count) { buffer, count in
            values.withUnsafeBufferPointer { input in
                let source = input.baseAddress!
                var target = buffer.baseAddress!
                /// The pixel at (row, column), or the fill value outside the image.
                @inline(__always) func pixel(_ row: Int, _ column: Int, _ channel: Int) -> Float {
                    row >= 0 && row < h && column >= 0 && column < w ? source[(row * w + column) * 3 + channel] : fill
                }
                for y in 0..<h {
                    let fy = Float(y)
                    let rowX = a1 * fy + a2, rowY = b1 * fy + b2
                    for x in 0..<w {
                        let fx = Float(x)
                        var sx = a0 * fx + rowX
                        var sy = b0 * fx + rowY
                        if !(sx >= 0 && sx <= lastX && sy >= 0 && sy <= lastY) {
                            switch fillMode {
                            case .constant:
                                // TensorFlow keeps the coordinate; neighbours outside read the fill.
                                if !(sx > lowX && sx < highX && sy > lowY && sy < highY) {
                                    target[0] = fill
                                    target[1] = fill
                                    target[2] = fill
                                    target += 3
                                    continue
                                }
                            case .reflect:
                                sx = reflectCoordinate(sx, w)
                                sy = reflectCoordinate(sy, h)
                            case .nearest:
                                sx = sx.isNaN ? 0 : min(max(sx, 0), lastX)
                                sy = sy.isNaN ? 0 : min(max(sy, 0), lastY)
                            case .wrap:
                                sx = wrapCoordinate(sx, w)
                                sy = wrapCoordinate(sy, h)
                            }
                        }
                        // Coordinates are now above -1 (below 0 only for constant fill), so
                        // truncation gives the floor without a call to floorf.
                        if bilinear {
                            let x0 = sx >= 0 ? Int(sx) : -1, y0 = sy >= 0 ? Int(sy) : -1
                            let fx = sx - Float(x0), fy = sy - Float(y0)
                            let gx = 1 - fx, gy = 1 - fy
                            if x0 >= 0 && x0 < w - 1 && y0 >= 0 && y0 < h - 1 {
                                let p00 = source + (y0 &* w &+ x0) &* 3, p10 = p00 + w &* 3
                                for c in 0..<3 {
                                    let top = gx * p00[c] + fx * p00[c + 3]
                                    let bottom = gx * p10[c] + fx * p10[c + 3]
                                    target[c] = gy * top + fy * bottom
                                }
                            } else {
                                // At the border: wrap joins the last pixel to the first, the
                                // other modes read the fill (zero weight unless constant).
                                var x1 = x0 + 1, y1 = y0 + 1
                                if wraps {
                                    if x1 == w { x1 = 0 }
                                    if y1 == h { y1 = 0 }
                                }
                                for c in 0..<3 {
                                    let top = gx * pixel(y0, x0, c) + fx * pixel(y0, x1, c)
                                    let bottom = gx * pixel(y1, x0, c) + fx * pixel(y1, x1, c)
                                    target[c] = gy * top + fy * bottom
                                }
                            }
                        } else {
                            // Halves away from zero, like C's round (coordinates above -0.5 here).
                            let tx = Int(sx), ty = Int(sy)
                            var nx = sx - Float(tx) >= 0.5 ? tx + 1 : tx
                            var ny = sy - Float(ty) >= 0.5 ? ty + 1 : ty
                            if wraps {
                                if nx == w { nx = 0 }
                                if ny == h { ny = 0 }
                            }
                            for c in 0..<3 { target[c] = pixel(ny, nx, c) }
                        }
                        target += 3
                    }
                }
            }
            count = values.count
        }
        return FloatImage(width: w, height: h, values: result)
    }

    /// ``transformed(by:interpolation:fillMode:)`` for a map without rotation or shear, where
    /// the input column depends only on the output column and the row only on the row. The
    /// per-pixel arithmetic is unchanged (horizontal blend of two rows, then vertical), so the
    /// values are identical; the sample positions are computed once per axis and the vertical
    /// blend runs over whole rows.
    private func transformedSeparably(x: (scale: Float, offset: Float), y: (scale: Float, offset: Float),
                                      interpolation: Interpolation, fillMode: FillMode) -> FloatImage {
        let (w, h) = (width, height)
        let columns = AxisSamples(scale: x.scale, offset: x.offset, size: w, interpolation: interpolation, fillMode: fillMode)
        let rows = AxisSamples(scale: y.scale, offset: y.offset, size: h, interpolation: interpolation, fillMode: fillMode)
        var fill: Float = 0
        if case .constant(let value) = fillMode { fill = value }
        let rowLength = w * 3
        let bilinear = interpolation == .bilinear
        // Input rows blended horizontally on demand into two cached rows (rows are reused by
        // neighbouring output rows), plus one row standing for rows outside the image.
        var scratch = [Float](repeating: 0, count: 3 * rowLength)
        let fillColumns = (0..<w).filter { columns.outside[$0] }
        let result = [Float](unsafeUninitializedCapacity: h * rowLength) { buffer, count in
            values.withUnsafeBufferPointer { input in
                scratch.withUnsafeMutableBufferPointer { scratch in
                    columns.withTables { first, second, weight, outsideColumns in
                        /// Blends input row `row` (or the fill row, `row == h`) horizontally into `line`.
                        func blend(_ row: Int, into line: UnsafeMutablePointer<Float>) {
                            let source = input.baseAddress! + min(row, h - 1) * rowLength
                            let inside = row < h
                            for column in 0..<w {
                                let target = line + column * 3
                                let i0 = Int(first[column]), i1 = Int(second[column])
                                if outsideColumns[column] || !inside || i0 < 0 || i1 < 0 {
                                    // Fill neighbours (constant mode, or the fill row).
                                    let f = weight[column], g = 1 - f
                                    for c in 0..<3 {
                                        let v0 = inside && i0 >= 0 ? source[i0 * 3 + c] : fill
                                        let v1 = inside && i1 >= 0 ? source[i1 * 3 + c] : fill
                                        target[c] = bilinear ? g * v0 + f * v1 : v0
                                    }
                                } else if bilinear {
                                    let f = weight[column], g = 1 - f
                                    let p0 = source + i0 * 3, p1 = source + i1 * 3
                                    target[0] = g * p0[0] + f * p1[0]
                                    target[1] = g * p0[1] + f * p1[1]
                                    target[2] = g * p0[2] + f * p1[2]
                                } else {
                                    let p0 = source + i0 * 3
                                    target[0] = p0[0]
                                    target[1] = p0[1]
                                    target[2] = p0[2]
                                }
                            }
                        }
                        let slot0 = scratch.baseAddress!, slot1 = slot0 + rowLength, fillRow = slot1 + rowLength
                        blend(h, into: fillRow)
                        var slotRows = (-1, -1)
                        rows.withTables { firstRows, secondRows, rowWeights, outsideRows in
                            for row in 0..<h {
                                let output = buffer.baseAddress! + row * rowLength
                                if outsideRows[row] {
                                    output.initialize(repeating: fill, count: rowLength)
                                    continue
                                }
                                // The two input rows, blended, from the two cache slots.
                                let r0 = Int(firstRows[row]), r1 = bilinear ? Int(secondRows[row]) : r0
                                let top: UnsafeMutablePointer<Float>
                                if r0 < 0 {
                                    top = fillRow
                                } else if slotRows.0 == r0 {
                                    top = slot0
                                } else if slotRows.1 == r0 {
                                    top = slot1
                                } else if slotRows.0 == r1 {
                                    blend(r0, into: slot1)
                                    (slotRows.1, top) = (r0, slot1)
                                } else {
                                    blend(r0, into: slot0)
                                    (slotRows.0, top) = (r0, slot0)
                                }
                                if bilinear {
                                    let bottom: UnsafeMutablePointer<Float>
                                    if r1 < 0 {
                                        bottom = fillRow
                                    } else if slotRows.0 == r1 {
                                        bottom = slot0
                                    } else if slotRows.1 == r1 {
                                        bottom = slot1
                                    } else if top == slot0 {
                                        blend(r1, into: slot1)
                                        (slotRows.1, bottom) = (r1, slot1)
                                    } else {
                                        blend(r1, into: slot0)
                                        (slotRows.0, bottom) = (r1, slot0)
                                    }
                                    let f = rowWeights[row], g = 1 - f
                                    for i in 0..<rowLength { output[i] = g * top[i] + f * bottom[i] }
                                } else {
                                    output.initialize(from: top, count: rowLength)
                                }
                                for column in fillColumns {
                                    output[column * 3] = fill
                                    output[column * 3 + 1] = fill
                                    output[column * 3 + 2] = fill
                                }
                            }
                        }
                    }
                }
            }
            count = h * rowLength
        }
        return FloatImage(width: w, height: h, values: result)
    }

    /// The image mirrored left to right and/or top to bottom (exact).
    public func flipped(horizontally: Bool, vertically: Bool) -> FloatImage {
        guard horizontally || vertically else { return self }
        let (w, h) = (width, height)
        let result = [Float](unsafeUninitializedCapacity: values.count) { buffer, count in
            values.withUnsafeBufferPointer { input in
                for y in 0..<h {
                    let sourceRow = input.baseAddress! + (vertically ? h - 1 - y : y) * w * 3
                    let targetRow = buffer.baseAddress! + y * w * 3
                    if horizontally {
                        for x in 0..<w {
                            let from = sourceRow + (w - 1 - x) * 3, to = targetRow + x * 3
                            to[0] = from[0]
                            to[1] = from[1]
                            to[2] = from[2]
                        }
                    } else {
                        targetRow.initialize(from: sourceRow, count: w * 3)
                    }
                }
            }
            count = values.count
        }
        return FloatImage(width: w, height: h, values: result)
    }
}

/// Where each output index of one axis samples the input, for the separable affine path:
/// the two neighbours (`-1` for the fill value, or one neighbour twice for nearest) and the
/// weight of the second, after the fill mode's coordinate mapping.
private struct AxisSamples {
    var first: [Int32]
    var second: [Int32]
    var weight: [Float]
    /// The whole sample is the fill value (constant mode, coordinate beyond the band).
    var outside: [Bool]

    func withTables<R>(_ body: (UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Float>, UnsafeBufferPointer<Bool>) -> R) -> R {
        first.withUnsafeBufferPointer { a in
            second.withUnsafeBufferPointer { b in
                weight.withUnsafeBufferPointer { c in outside.withUnsafeBufferPointer { d in body(a, b, c, d) } }
            }
        }
    }

    init(scale: Float, offset: Float, size: Int, interpolation: Interpolation, fillMode: FillMode) {
        first = [Int32](repeating: -1, count: size)
        second = [Int32](repeating: -1, count: size)
        weight = [Float](repeating: 0, count: size)
        outside = [Bool](repeating: false, count: size)
        let last = Float(size - 1)
        let bilinear = interpolation == .bilinear
        let (low, high): (Float, Float) = bilinear ? (-1, Float(size)) : (-0.5, Float(size) - 0.5)
        for index in 0..<size {
            var s = scale * Float(index) + offset
            var wraps = false
            if !(s >= 0 && s <= last) {
                switch fillMode {
                case .constant:
                    if !(s > low && s < high) {
                        outside[index] = true
                        continue
                    }
                case .reflect: s = reflectCoordinate(s, size)
                case .nearest: s = s.isNaN ? 0 : min(max(s, 0), last)
                case .wrap:
                    s = wrapCoordinate(s, size)
                    wraps = true
                }
            }
            func valid(_ i: Int) -> Int32 { i >= 0 && i < size ? Int32(i) : -1 }
            if bilinear {
                let i0 = s >= 0 ? Int(s) : -1
                var i1 = i0 + 1
                if wraps && i1 == size { i1 = 0 }
                first[index] = valid(i0)
                second[index] = valid(i1)
                weight[index] = s - Float(i0)
            } else {
                let t = Int(s)
                var n = s - Float(t) >= 0.5 ? t + 1 : t
                if wraps && n == size { n = 0 }
                first[index] = valid(n)
                second[index] = valid(n)
            }
        }
    }
}

/// TensorFlow's `MapCoordinate<FILL_REFLECT>` (after SciPy's `ndimage`): half-sample
/// symmetric reflection, then a clamp to `[0, size - 1]`.
@inline(__always)
private func reflectCoordinate(_ coordinate: Float, _ size: Int) -> Float {
    guard coordinate.isFinite, size > 1 else { return 0 }
    let length = Float(size), twice = 2 * size
    var c = min(max(coordinate, -0x1p24), 0x1p24)
    if c < 0 {
        if c < Float(twice) { c = Float(twice * Int(-c / Float(twice))) + c }
        c = c < -length ? c + Float(twice) : -c - 1
    } else if c > length - 1 {
        c -= Float(twice * Int(c / Float(twice)))
        if c >= length { c = Float(twice) - c - 1 }
    }
    return min(max(c, 0), length - 1)
}

/// Periodic extension: the coordinate modulo the size, in `[0, size)`.
@inline(__always)
private func wrapCoordinate(_ coordinate: Float, _ size: Int) -> Float {
    guard coordinate.isFinite, size > 1 else { return 0 }
    let length = Float(size)
    let c = coordinate - length * (coordinate / length).rounded(.down)
    return c >= 0 && c < length ? c : 0
}

// MARK: - Geometric augmentation

/// Mirrors images at random, each enabled axis with probability 1/2 (Keras `RandomFlip`,
/// torchvision `RandomHorizontalFlip` / `RandomVerticalFlip`).
///
/// `RandomFlip(horizontal: true)` is Keras `mode="horizontal"`. With both axes enabled the two
/// flips are drawn independently (four outcomes), as in Keras 2 and torchvision; Keras 3's
/// `"horizontal_and_vertical"` draws once and flips both axes or neither.
public struct RandomFlip: ImageTransform {
    public var horizontal: Bool
    public var vertical: Bool

    public init(horizontal: Bool = true, vertical: Bool = false) {
        self.horizontal = horizontal
        self.vertical = vertical
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        let flipsHorizontally = horizontal && generator.nextUnitFloat() < 0.5
        let flipsVertically = vertical && generator.nextUnitFloat() < 0.5
        return image.flipped(horizontally: flipsHorizontally, vertically: flipsVertically)
    }
}

/// Rotates images by a random angle about their centre (Keras `RandomRotation`).
///
/// `factor` is in fractions of a full turn, within `[-1, 1]`: `0.1` draws uniformly from
/// ±36°, `FactorRange(-0.2, 0.3)` from -72° to 108°. Positive angles turn the content
/// counter-clockwise. The centre is `((width - 1) / 2, (height - 1) / 2)` in pixel
/// coordinates, as in Keras. Matches Keras on the TensorFlow backend for a fixed angle to
/// within float rounding of the matrix (zoo computes it in double precision, Keras in
/// single).
public struct RandomRotation: ImageTransform {
    public var factor: FactorRange
    public var fillMode: FillMode
    public var interpolation: Interpolation

    public init(factor: FactorRange, fillMode: FillMode = .reflect, interpolation: Interpolation = .bilinear) {
        self.factor = factor.checked(within: -1...1, "the rotation factor")
        self.fillMode = fillMode
        self.interpolation = interpolation
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        let turns = generator.uniform(factor.lower, factor.upper)
        if factor.isZero { return image }
        let map = AffineMap.rotation(angle: Double(turns) * 2 * .pi, width: image.width, height: image.height)
        return image.transformed(by: map, interpolation: interpolation, fillMode: fillMode)
    }
}

/// Zooms images in or out by a random amount about their centre (Keras `RandomZoom`).
///
/// Each factor is a fraction in `(-1, 1]`; the zoom drawn is `1 + factor`, and as in Keras a
/// positive factor zooms out (the output shows more of the scene, smaller) and a negative one
/// zooms in. `heightFactor: 0.2` draws from `[-0.2, 0.2]`. Without a `widthFactor` the width
/// uses the height's zoom, keeping the aspect ratio.
public struct RandomZoom: ImageTransform {
    public var heightFactor: FactorRange
    /// `nil`: the same zoom as the height.
    public var widthFactor: FactorRange?
    public var fillMode: FillMode
    public var interpolation: Interpolation

    public init(heightFactor: FactorRange, widthFactor: FactorRange? = nil, fillMode: FillMode = .reflect, interpolation: Interpolation = .bilinear) {
        precondition(heightFactor.lower > -1 && heightFactor.upper <= 1, "the zoom height factor must lie in (-1, 1], got \(heightFactor.lower)...\(heightFactor.upper)")
        if let widthFactor {
            precondition(widthFactor.lower > -1 && widthFactor.upper <= 1, "the zoom width factor must lie in (-1, 1], got \(widthFactor.lower)...\(widthFactor.upper)")
        }
        self.heightFactor = heightFactor
        self.widthFactor = widthFactor
        self.fillMode = fillMode
        self.interpolation = interpolation
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        let heightZoom = 1 + generator.uniform(heightFactor.lower, heightFactor.upper)
        let widthZoom = widthFactor.map { 1 + generator.uniform($0.lower, $0.upper) } ?? heightZoom
        if heightZoom == 1 && widthZoom == 1 { return image }
        let map = AffineMap.zoom(x: Double(widthZoom), y: Double(heightZoom), width: image.width, height: image.height)
        return image.transformed(by: map, interpolation: interpolation, fillMode: fillMode)
    }
}

/// Shifts images by a random fraction of their size (Keras `RandomTranslation`).
///
/// Factors are fractions of the height and width in `[-1, 1]`; `heightFactor: 0.1` shifts by
/// up to 10% of the height up or down. Positive values move the content down and right. The
/// shift is not rounded to whole pixels (bilinear interpolation blends), as in Keras.
public struct RandomTranslation: ImageTransform {
    public var heightFactor: FactorRange
    public var widthFactor: FactorRange
    public var fillMode: FillMode
    public var interpolation: Interpolation

    public init(heightFactor: FactorRange, widthFactor: FactorRange, fillMode: FillMode = .reflect, interpolation: Interpolation = .bilinear) {
        self.heightFactor = heightFactor.checked(within: -1...1, "the translation height factor")
        self.widthFactor = widthFactor.checked(within: -1...1, "the translation width factor")
        self.fillMode = fillMode
        self.interpolation = interpolation
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        let dy = generator.uniform(heightFactor.lower, heightFactor.upper) * Float(image.height)
        let dx = generator.uniform(widthFactor.lower, widthFactor.upper) * Float(image.width)
        if dx == 0 && dy == 0 { return image }
        return image.transformed(by: .translation(x: Double(dx), y: Double(dy)), interpolation: interpolation, fillMode: fillMode)
    }
}

/// How ``RandomPaddedCrop`` pads (the names are NumPy's and torchvision's).
public enum PaddingMode: Sendable, Hashable {
    /// A constant; `.constant(0)` is the classic CIFAR recipe.
    case constant(Float)
    /// `(c b | a b c d | c b)`: mirror without repeating the edge pixel (torchvision
    /// `padding_mode="reflect"`, NumPy `"reflect"`).
    case reflect
    /// `(b a | a b c d | d c)`: mirror repeating the edge pixel (NumPy `"symmetric"`, the
    /// same extension as Keras's `fill_mode="reflect"`).
    case symmetric
    /// `(a a | a b c d | d d)`: the edge pixel.
    case edge
}

/// Pads the image, then crops a window at a random position: the CIFAR recipe
/// (torchvision `RandomCrop(32, padding=4)`; Keras has no such layer).
///
/// The window's top left corner is uniform over all positions. By default the window has the
/// input's size, so the output keeps it.
public struct RandomPaddedCrop: ImageTransform {
    public var padding: Int
    public var mode: PaddingMode
    /// The window's size; `nil` keeps the input's.
    public var height: Int?
    public var width: Int?

    public init(padding: Int = 4, mode: PaddingMode = .constant(0), height: Int? = nil, width: Int? = nil) {
        precondition(padding >= 0, "padding must not be negative, got \(padding)")
        self.padding = padding
        self.mode = mode
        self.height = height
        self.width = width
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        let cropHeight = height ?? image.height, cropWidth = width ?? image.width
        let paddedHeight = image.height + 2 * padding, paddedWidth = image.width + 2 * padding
        precondition(cropHeight <= paddedHeight && cropWidth <= paddedWidth,
                     "a \(cropHeight)x\(cropWidth) crop does not fit in the padded \(paddedHeight)x\(paddedWidth) image")
        let top = generator.uniformIndex(below: paddedHeight - cropHeight + 1) - padding
        let left = generator.uniformIndex(below: paddedWidth - cropWidth + 1) - padding
        return image.croppedWithPadding(top: top, left: left, height: cropHeight, width: cropWidth, mode: mode)
    }
}

extension FloatImage {
    /// The `height` x `width` window at `(top, left)`, which may reach outside the image; the
    /// outside comes from `mode`.
    public func croppedWithPadding(top: Int, left: Int, height: Int, width: Int, mode: PaddingMode) -> FloatImage {
        precondition(height > 0 && width > 0, "a crop needs a positive size, got \(height)x\(width)")
        if top >= 0 && left >= 0 && top + height <= self.height && left + width <= self.width {
            return cropped(top: top, left: left, height: height, width: width)
        }
        let rows = (0..<height).map { paddedIndex(top + $0, self.height, mode) }
        let columns = (0..<width).map { paddedIndex(left + $0, self.width, mode) }
        var fill: Float = 0
        if case .constant(let value) = mode { fill = value }
        let sourceWidth = self.width
        let result = [Float](unsafeUninitializedCapacity: height * width * 3) { buffer, count in
            values.withUnsafeBufferPointer { input in
                var target = buffer.baseAddress!
                for row in rows {
                    for column in columns {
                        if row < 0 || column < 0 {
                            target[0] = fill
                            target[1] = fill
                            target[2] = fill
                        } else {
                            let from = input.baseAddress! + (row * sourceWidth + column) * 3
                            target[0] = from[0]
                            target[1] = from[1]
                            target[2] = from[2]
                        }
                        target += 3
                    }
                }
            }
            count = height * width * 3
        }
        return FloatImage(width: width, height: height, values: result)
    }
}

/// The source index of padded index `index` along an axis of `size` pixels; -1 for the fill.
private func paddedIndex(_ index: Int, _ size: Int, _ mode: PaddingMode) -> Int {
    if index >= 0 && index < size { return index }
    switch mode {
    case .constant:
        return -1
    case .edge:
        return min(max(index, 0), size - 1)
    case .reflect:
        guard size > 1 else { return 0 }
        let period = 2 * (size - 1)
        var j = index % period
        if j < 0 { j += period }
        return j < size ? j : period - j
    case .symmetric:
        let period = 2 * size
        var j = index % period
        if j < 0 { j += period }
        return j < size ? j : period - 1 - j
    }
}

// MARK: - Colour augmentation

/// Changes the contrast by a random factor (Keras `RandomContrast`).
///
/// Per image a factor `f` is drawn uniformly from `[1 - lower, 1 + upper]`; each channel
/// becomes `(x - mean) * f + mean`, with the channel's mean over the image, and values are
/// clipped to `valueRange`. `RandomContrast(factor: 0.2)` draws `f` from `[0.8, 1.2]` as
/// Keras documents it (and Keras 2 and `tf.image.random_contrast` compute it); Keras 3.15's
/// code turns a single number into `[1, 1 + factor]` instead, which
/// `RandomContrast(lower: 0, upper: 0.2)` reproduces.
public struct RandomContrast: ImageTransform {
    public var lower: Float
    public var upper: Float
    public var valueRange: ClosedRange<Float>

    /// `f` uniform in `[1 - factor, 1 + factor]`, `factor` in `[0, 1]`.
    public init(factor: Float, valueRange: ClosedRange<Float> = 0...255) {
        self.init(lower: factor, upper: factor, valueRange: valueRange)
    }

    /// `f` uniform in `[1 - lower, 1 + upper]` (Keras `factor=(lower, upper)`).
    public init(lower: Float, upper: Float, valueRange: ClosedRange<Float> = 0...255) {
        precondition(1 - lower <= 1 + upper && lower <= 1, "contrast factors must give 0 <= 1 - lower <= 1 + upper, got lower \(lower), upper \(upper)")
        self.lower = lower
        self.upper = upper
        self.valueRange = valueRange
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        let factor = generator.uniform(1 - lower, 1 + upper)
        return image.contrastAdjusted(by: factor, clippedTo: valueRange)
    }
}

extension FloatImage {
    /// `(x - mean) * factor + mean` per channel (means over the image), clipped to `range`.
    public func contrastAdjusted(by factor: Float, clippedTo range: ClosedRange<Float>) -> FloatImage {
        let means = channelMeans()
        let (m0, m1, m2) = (means[0], means[1], means[2])
        return mapChannels(clippedTo: range, { ($0 - m0) * factor + m0 }, { ($0 - m1) * factor + m1 }, { ($0 - m2) * factor + m2 })
    }

    /// The mean of each channel over the image: single-precision partial sums per row (six
    /// independent accumulators), added up in double precision.
    func channelMeans() -> [Float] {
        var sums: (Double, Double, Double) = (0, 0, 0)
        let rowLength = width * 3
        values.withUnsafeBufferPointer { v in
            for row in 0..<height {
                let line = v.baseAddress! + row * rowLength
                var (r0, g0, b0, r1, g1, b1): (Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0)
                var i = 0
                while i + 6 <= rowLength {
                    r0 += line[i]
                    g0 += line[i + 1]
                    b0 += line[i + 2]
                    r1 += line[i + 3]
                    g1 += line[i + 4]
                    b1 += line[i + 5]
                    i += 6
                }
                if i < rowLength {
                    r0 += line[i]
                    g0 += line[i + 1]
                    b0 += line[i + 2]
                }
                sums.0 += Double(r0) + Double(r1)
                sums.1 += Double(g0) + Double(g1)
                sums.2 += Double(b0) + Double(b1)
            }
        }
        let pixels = Double(max(width * height, 1))
        return [Float(sums.0 / pixels), Float(sums.1 / pixels), Float(sums.2 / pixels)]
    }

    /// Every value plus its channel's delta, clipped to `range`.
    func shifted(by deltas: (Float, Float, Float), clippedTo range: ClosedRange<Float>?) -> FloatImage {
        let (d0, d1, d2) = deltas
        return mapChannels(clippedTo: range, { $0 + d0 }, { $0 + d1 }, { $0 + d2 })
    }

    /// A new image with `red`, `green` and `blue` applied to the channels, clipped to `range`.
    @inline(__always)
    func mapChannels(clippedTo range: ClosedRange<Float>?, _ red: (Float) -> Float, _ green: (Float) -> Float, _ blue: (Float) -> Float) -> FloatImage {
        let (low, high) = (range?.lowerBound ?? -.infinity, range?.upperBound ?? .infinity)
        let result = [Float](unsafeUninitializedCapacity: values.count) { buffer, count in
            values.withUnsafeBufferPointer { v in
                var offset = 0
                while offset < v.count {
                    buffer[offset] = min(max(red(v[offset]), low), high)
                    buffer[offset + 1] = min(max(green(v[offset + 1]), low), high)
                    buffer[offset + 2] = min(max(blue(v[offset + 2]), low), high)
                    offset += 3
                }
            }
            count = values.count
        }
        return FloatImage(width: width, height: height, values: result)
    }
}

/// Changes the brightness by a random amount (Keras `RandomBrightness`).
///
/// Per image `delta` is drawn uniformly from `factor` (within `[-1, 1]`; `0.2` means
/// `[-0.2, 0.2]`), `delta * (max - min)` of `valueRange` is added to every value, and the
/// result is clipped to `valueRange`.
public struct RandomBrightness: ImageTransform {
    public var factor: FactorRange
    public var valueRange: ClosedRange<Float>

    public init(factor: FactorRange, valueRange: ClosedRange<Float> = 0...255) {
        self.factor = factor.checked(within: -1...1, "the brightness factor")
        self.valueRange = valueRange
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        let delta = generator.uniform(factor.lower, factor.upper) * (valueRange.upperBound - valueRange.lowerBound)
        return image.shifted(by: (delta, delta, delta), clippedTo: valueRange)
    }
}

/// Adds a random offset to the channels (Keras `ImageDataGenerator(channel_shift_range=r)`).
///
/// By default each channel gets its own offset, uniform in `[-range, range]`, and values are
/// clipped to `[0, 255]`: a random colour cast. ``keras(range:)`` reproduces
/// `ImageDataGenerator` exactly: one offset for all three channels, clipped to the image's own
/// minimum and maximum.
public struct RandomChannelShift: ImageTransform {
    /// Where shifted values are clipped.
    public enum Clipping: Sendable, Hashable {
        /// To a fixed range.
        case valueRange(ClosedRange<Float>)
        /// To the smallest and largest value of the image before the shift (Keras).
        case imageRange
        /// Not at all.
        case unclipped
    }

    public var range: Float
    public var perChannel: Bool
    public var clipping: Clipping

    public init(range: Float, perChannel: Bool = true, clipping: Clipping = .valueRange(0...255)) {
        precondition(range >= 0, "the channel shift range must not be negative, got \(range)")
        self.range = range
        self.perChannel = perChannel
        self.clipping = clipping
    }

    /// `ImageDataGenerator(channel_shift_range=range)`'s shift.
    public static func keras(range: Float) -> RandomChannelShift {
        RandomChannelShift(range: range, perChannel: false, clipping: .imageRange)
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        let first = generator.uniform(-range, range)
        let deltas = perChannel ? (first, generator.uniform(-range, range), generator.uniform(-range, range)) : (first, first, first)
        let bounds: ClosedRange<Float>?
        switch clipping {
        case .valueRange(let range): bounds = range
        case .unclipped: bounds = nil
        case .imageRange:
            let low = image.values.min() ?? 0, high = image.values.max() ?? 0
            bounds = low...high
        }
        return image.shifted(by: deltas, clippedTo: bounds)
    }
}
