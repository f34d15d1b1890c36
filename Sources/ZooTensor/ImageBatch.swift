/// Writes images straight into a batch tensor's activation layout (`nChw8c` or `nChw16c`),
/// so data loaders hand the network a batch with no reorder. Each image's region of the buffer
/// is its own: several threads may write different images of one batch at the same time.
public struct ImageBatchWriter: @unchecked Sendable {
    public let count: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    private let base: UnsafeMutablePointer<Float>
    private let block: Int
    private let blocksPerImage: Int

    init(base: UnsafeMutablePointer<Float>, shape: [Int], block: Int) {
        (count, channels, height, width) = (shape[0], shape[1], shape[2], shape[3])
        self.base = base
        self.block = block
        blocksPerImage = (channels + block - 1) / block
    }

    /// Writes image `index` from channels-last values (`height * width * channels`).
    public func write(image index: Int, nhwc values: UnsafeBufferPointer<Float>) {
        precondition(index >= 0 && index < count && values.count == height * width * channels,
                     "image \(index) of a \(count)x\(height)x\(width)x\(channels) batch")
        let plane = height * width
        for channel in 0..<channels {
            let blockBase = (index * blocksPerImage + channel / block) * plane * block + channel % block
            var source = channel
            for pixel in 0..<plane {
                base[blockBase + pixel * block] = values[source]
                source += channels
            }
        }
    }
}

extension Tensor {
    /// A batch of `count` images `[count, channels, height, width]` in the activation layout,
    /// filled by `fill` through an ``ImageBatchWriter``. Channel padding of the blocked layout is
    /// zero.
    public static func imageBatch(count: Int, channels: Int = 3, height: Int, width: Int,
                                  _ fill: (ImageBatchWriter) throws -> Void) throws -> Tensor {
        let shape = [count, channels, height, width]
        guard shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidShape(operation: "Tensor.imageBatch", shape: shape, expected: "positive dimensions")
        }
        let layout = Layout.blocked(shape)
        let buffer = Buffer(layout)
        buffer.storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: layout.byteCount)
        let floats = buffer.storage.pointer.bindMemory(to: Float.self, capacity: layout.byteCount / 4)
        try fill(ImageBatchWriter(base: floats, shape: shape, block: Layout.activationBlockSize))
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
