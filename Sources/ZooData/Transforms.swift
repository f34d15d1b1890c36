/// One step of per-sample image processing: a resize, a crop, an augmentation, a
/// normalization.
///
/// Every random choice a transform makes comes from `generator`, and only from it, so the
/// same image and the same generator state give the same output on any thread. Transforms
/// that make no random choice ignore the generator. A transform is a value (`Sendable`):
/// one instance serves every loader thread.
import ZooTensor

public protocol ImageTransform: Sendable {
    /// Transforms `image`, drawing what it needs from `generator`.
    func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage
}

/// An ordered list of transforms, applied one after the other with one generator.
///
/// A loader calls ``apply(_:seed:epoch:index:)`` per sample: the generator is derived from
/// the run's seed, the epoch and the sample's index (``SeededGenerator/forSample(seed:epoch:index:)``),
/// so an augmented sample does not depend on which thread handled it, on batch order or on
/// the samples before it, and a run with the same seed repeats exactly.
///
/// ```swift
/// let train = TransformPipeline(
///     Resize(size: 96),
///     RandomFlip(horizontal: true),
///     RandomRotation(factor: 0.05),
///     RandomZoom(heightFactor: 0.1),
///     RandomContrast(factor: 0.2))
/// let image = train.apply(decoded.floatImage, seed: runSeed, epoch: epoch, index: sampleIndex)
/// ```
public struct TransformPipeline: ImageTransform {
    /// The steps, first applied first.
    public var transforms: [any ImageTransform]

    public init(_ transforms: [any ImageTransform]) {
        self.transforms = transforms
    }

    public init(_ transforms: any ImageTransform...) {
        self.transforms = transforms
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        var image = image
        for transform in transforms {
            image = transform.apply(image, generator: &generator)
        }
        return image
    }

    /// Applies the pipeline with the generator of sample `index` in `epoch` of the run seeded
    /// by `seed`.
    public func apply(_ image: FloatImage, seed: UInt64, epoch: Int, index: Int) -> FloatImage {
        var generator = SeededGenerator.forSample(seed: seed, epoch: epoch, index: index)
        return apply(image, generator: &generator)
    }

    /// torchvision's evaluation transform for ImageNet weights: shorter side to `resize`
    /// (bilinear, antialiased), then the central `crop` x `crop` window (256 and 224 for most
    /// weight sets, 342 and 299 for Inception V3). Normalization is left to ``Preprocessing``.
    public static func torchvisionEvaluation(resize: Int = 256, crop: Int = 224) -> TransformPipeline {
        TransformPipeline(ResizeShorterSide(resize, method: .torchvision), CenterCrop(size: crop))
    }
}

extension SeededGenerator {
    /// The generator for sample `index` of `epoch` in a run seeded by `seed`.
    ///
    /// The three numbers are mixed with SplitMix64's finalizer, one after the other, into the
    /// generator's seed, so neighbouring indices, epochs and seeds give unrelated streams.
    /// Negative epochs and indices are allowed (their bit patterns are used).
    public static func forSample(seed: UInt64, epoch: Int, index: Int) -> SeededGenerator {
        var state = mix64(seed ^ 0x5A0D_A7A5_EED5_0001)
        state = mix64(state ^ UInt64(bitPattern: Int64(epoch)))
        state = mix64(state ^ UInt64(bitPattern: Int64(index)))
        return SeededGenerator(seed: state)
    }

    /// A uniform value in `[lower, upper)` (`lower` itself when the two are equal).
    mutating func uniform(_ lower: Float, _ upper: Float) -> Float {
        let unit = nextUnitFloat()
        return lower == upper ? lower : lower + (upper - lower) * unit
    }

    /// A uniform integer in `0 ..< bound` (multiply-high, the same on every platform).
    mutating func uniformIndex(below bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}

/// SplitMix64's output function: a bijective, well-mixing hash of 64 bits.
private func mix64(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Subtracting a mean computed from the training data, the older alternative to a weight
/// set's fixed preprocessing (Caffe's mean image, Keras `ImageDataGenerator(featurewise_center=True)`
/// for a mean pixel).
///
/// Apply it after the resize and crop that fix the image size: a mean image must have the
/// size of the images it is subtracted from. Values are no longer in `[0, 255]` afterwards.
public enum MeanSubtraction: ImageTransform, Equatable {
    /// Subtract one `[r, g, b]` value from every pixel.
    case pixel([Float])
    /// Subtract a mean image pixel by pixel.
    case image(FloatImage)

    /// What ``estimate(from:kind:)`` averages.
    public enum Kind: Sendable {
        /// The mean over every pixel of every image (images may differ in size).
        case pixel
        /// The mean image (all images must have the same size).
        case image
    }

    /// The mean of `images` (a sample of the training set), accumulated in double precision.
    public static func estimate<Images: Sequence<FloatImage>>(from images: Images, kind: Kind) -> MeanSubtraction {
        switch kind {
        case .pixel:
            var sums = [Double](repeating: 0, count: 3)
            var pixels = 0
            for image in images {
                for (offset, value) in image.values.enumerated() { sums[offset % 3] += Double(value) }
                pixels += image.width * image.height
            }
            precondition(pixels > 0, "estimating a mean pixel needs at least one non-empty image")
            return .pixel(sums.map { Float($0 / Double(pixels)) })
        case .image:
            var sums: [Double] = []
            var size: (width: Int, height: Int)?
            var count = 0
            for image in images {
                if let size {
                    precondition(size == (image.width, image.height),
                                 "a mean image needs images of one size; got \(image.width)x\(image.height) after \(size.width)x\(size.height)")
                } else {
                    size = (image.width, image.height)
                    sums = [Double](repeating: 0, count: image.values.count)
                }
                for (offset, value) in image.values.enumerated() { sums[offset] += Double(value) }
                count += 1
            }
            guard let size else { preconditionFailure("estimating a mean image needs at least one image") }
            return .image(FloatImage(width: size.width, height: size.height, values: sums.map { Float($0 / Double(count)) }))
        }
    }

    /// `image` minus the mean.
    public func subtracted(from image: FloatImage) -> FloatImage {
        var result = image
        switch self {
        case .pixel(let mean):
            precondition(mean.count == 3, "a mean pixel has 3 values, got \(mean.count)")
            result.values.withUnsafeMutableBufferPointer { values in
                var offset = 0
                while offset < values.count {
                    values[offset] -= mean[0]
                    values[offset + 1] -= mean[1]
                    values[offset + 2] -= mean[2]
                    offset += 3
                }
            }
        case .image(let mean):
            precondition(mean.width == image.width && mean.height == image.height,
                         "the mean image is \(mean.width)x\(mean.height) but the image is \(image.width)x\(image.height)")
            for offset in result.values.indices { result.values[offset] -= mean.values[offset] }
        }
        return result
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        subtracted(from: image)
    }
}

extension Preprocessing: ImageTransform {
    /// The weight set's preprocessing applied to one image (the same arithmetic as
    /// ``apply(nhwc:)``): for `caffe` the channels come out in BGR order.
    public func applied(to image: FloatImage) -> FloatImage {
        guard self != .none else { return image }
        let (scale, offset, swaps) = channelAffine
        var result = image
        result.values.withUnsafeMutableBufferPointer { values in
            var pixel = 0
            while pixel < values.count {
                let (r, g, b) = (values[pixel], values[pixel + 1], values[pixel + 2])
                let (first, third) = swaps ? (b, r) : (r, b)
                values[pixel] = first * scale[0] + offset[0]
                values[pixel + 1] = g * scale[1] + offset[1]
                values[pixel + 2] = third * scale[2] + offset[2]
                pixel += 3
            }
        }
        return result
    }

    public func apply(_ image: FloatImage, generator: inout SeededGenerator) -> FloatImage {
        applied(to: image)
    }
}
