/// Writes images into a batch tensor in channels-last order (`NHWC`, the order images come in),
/// which is what the first convolution reads: oneDNN's kernels for 3 input channels take
/// channels-last, in f32 as in bf16 and int8. A batch blocked by 16 channels (13 of them
/// padding) cost a reorder before the first layer in every precision: 2.8 ms of a 74 ms int8
/// ResNet50 pass and of a 22 ms int8 MobileNetV2 pass at 96x96, batch 32 (oneDNN 2.6.3,
/// `jit:uni`). Each image's region of the buffer is its own: several threads may write
/// different images of one batch at the same time.
public struct ImageBatchWriter: @unchecked Sendable {
    public let count: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    private let base: UnsafeMutablePointer<Float>

    init(base: UnsafeMutablePointer<Float>, shape: [Int]) {
        (count, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
        self.base = base
    }

    /// Writes image `index` from channels-last values (`height * width * channels`).
    public func write(image index: Int, nhwc values: UnsafeBufferPointer<Float>) {
        let size = height * width * channels
        precondition(index >= 0 && index < count && values.count == size, "image \(index) of a \(count)x\(height)x\(width)x\(channels) batch")
        (base + index * size).update(from: values.baseAddress!, count: size)
    }
}

extension Tensor {
    /// A batch of `count` images `[count, channels, height, width]`, stored channels-last,
    /// filled by `fill` through an ``ImageBatchWriter``.
    public static func imageBatch(count: Int, channels: Int = 3, height: Int, width: Int,
                                  _ fill: (ImageBatchWriter) throws -> Void) throws -> Tensor {
        let shape = [count, channels, height, width]
        guard shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidShape(operation: "Tensor.imageBatch", shape: shape, expected: "positive dimensions")
        }
        let layout = Layout.nhwc(shape)
        let buffer = Buffer(layout)
        buffer.storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: layout.byteCount)
        let floats = buffer.storage.pointer.bindMemory(to: Float.self, capacity: layout.byteCount / 4)
        try fill(ImageBatchWriter(base: floats, shape: shape))
        return Tensor(shape: shape, buffer: buffer)
    }
}

/// One sample of a batch tensor, as its physical values: what a cache keeps of a tensor that
/// several batches need again.
public struct TensorSample: Sendable {
    /// The sample's dimensions (the batch dimension left out).
    public let shape: [Int]
    /// Whether `values` are in the blocked activation layout (else row-major).
    public let blocked: Bool
    public let values: [Float]

    public init(shape: [Int], blocked: Bool, values: [Float]) {
        self.shape = shape
        self.blocked = blocked
        self.values = values
    }
}

extension Tensor {
    /// Each sample of a batch (first dimension) as physical f32 values. 4-D tensors are taken in
    /// the blocked f32 activation layout, others row-major; both keep a sample's values contiguous.
    public func samples() throws -> [TensorSample] {
        guard let count = shape.first, count > 0 else {
            throw TensorError.invalidShape(operation: "Tensor.samples", shape: shape, expected: "a batch [N, ...]")
        }
        let blocked = shape.count == 4
        let standard = try reordered(to: blocked ? .blocked(shape) : .rowMajor(shape))
        let physical = standard.physicalFloats()
        let size = physical.count / count
        return (0..<count).map { index in
            TensorSample(shape: Array(shape.dropFirst()), blocked: blocked, values: Array(physical[index * size..<(index + 1) * size]))
        }
    }

    /// A batch from samples of one shape and layout (the inverse of ``samples()``).
    public init(stacking samples: [TensorSample]) throws {
        guard let first = samples.first, samples.allSatisfy({ $0.shape == first.shape && $0.blocked == first.blocked }) else {
            throw TensorError.invalidArgument(operation: "Tensor(stacking:)", message: "needs one or more samples of one shape and layout")
        }
        let shape = [samples.count] + first.shape
        let layout: Layout = first.blocked ? .blocked(shape) : .rowMajor(shape)
        let buffer = Buffer(layout)
        guard layout.byteCount / 4 == first.values.count * samples.count else {
            throw TensorError.invalidShape(operation: "Tensor(stacking:)", shape: shape, expected: "samples taken by samples() from this layout")
        }
        let target = buffer.storage.pointer.bindMemory(to: Float.self, capacity: layout.byteCount / 4)
        for (index, sample) in samples.enumerated() {
            sample.values.withUnsafeBufferPointer { (target + index * sample.values.count).update(from: $0.baseAddress!, count: $0.count) }
        }
        self.init(shape: shape, buffer: buffer)
    }
}
