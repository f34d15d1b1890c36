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
