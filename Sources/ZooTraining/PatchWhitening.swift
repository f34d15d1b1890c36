import Foundation
import ZooTensor
import ZooNN
import ZooModels

/// Starts a model trained from scratch with its first convolution set to whiten the input's
/// patches, and keeps that convolution's weights fixed while everything else trains: the first
/// step of airbench's ablations (Jordan 2024), which takes its CIFAR-10 network to 94% in 22
/// epochs instead of 35.
///
/// The filters are the eigenvectors of the covariance of the training images' patches (the
/// convolution's kernel, at its stride), each divided by `sqrt(eigenvalue + epsilon)`, so that
/// the outputs are decorrelated with unit variance. The first half of the output channels take
/// the strongest directions and the second half the same directions negated, so that both signs
/// of each survive the activation after it. A convolution with `2 * C * kh * kw` outputs
/// (cifar-airbench's stem: 24 for 2x2 patches of 3 channels) gets every direction; one with
/// fewer, the strongest. The covariance is centred (the batch norm after a stem removes the
/// mean anyway); a bias of the convolution starts at zero and trains.
public struct PatchWhitening: Codable, Sendable, Equatable {
    /// Training images the covariance is estimated on (airbench's 5,000), in the run's seeded
    /// order and without augmentation.
    public var images: Int
    /// Added to each eigenvalue before the square root, so that the weakest directions (the
    /// noise of the finest detail) are not amplified without bound. airbench's 5e-4, for inputs
    /// normalized to unit variance per channel.
    public var epsilon: Float

    public init(images: Int = 5000, epsilon: Float = 5e-4) {
        self.images = images
        self.epsilon = epsilon
    }

    /// What ``apply(to:images:)`` did.
    public struct Result: Sendable, Equatable {
        /// The layer whose filters were set.
        public var layer: String
        /// Patches the covariance was estimated from.
        public var patches: Int
        /// The covariance's eigenvalues, largest first (every direction, used or not).
        public var eigenvalues: [Double]
    }

    /// The most multiply-adds the covariance takes (about two seconds): beyond it, positions
    /// are sampled on a coarser grid. cifar-airbench's 2x2 stem on 5,000 images is 375 million;
    /// a 7x7 stem at 224x224 would be 700 billion (12,544 positions of 147 values an image).
    static let maximumProducts = 2_000_000_000

    /// The base's first convolution, the layer whitening sets, with its name.
    public static func firstConvolution(of model: ImageModel) throws -> (layer: String, convolution: Conv2D) {
        guard let first = model.baseLayers.first(where: { $0.module is Conv2D }), let convolution = first.module as? Conv2D else {
            throw TrainingError.cannotWhiten(layer: nil, reason: "\(model.name)'s base has no convolution")
        }
        let options = convolution.options
        guard options.groups == 1, options.dilation == [1, 1] else {
            throw TrainingError.cannotWhiten(layer: first.name, reason: "a grouped or dilated convolution does not see whole patches")
        }
        let shape = convolution.weight.shape
        let patchSize = shape[1...].reduce(1, *)
        guard shape[0] <= 2 * patchSize else {
            throw TrainingError.cannotWhiten(layer: first.name, reason: "its \(shape[0]) outputs exceed twice the \(patchSize) values of a patch "
                                             + "(\(shape[1]) channels x \(shape[2])x\(shape[3])), the directions whitening has")
        }
        return (first.name, convolution)
    }

    /// Sets the first convolution of `model` from the first ``images`` of `batches`
    /// (preprocessed images `[N, C, H, W]`, as the run feeds the model) and zeroes its bias.
    @discardableResult
    public func apply(to model: ImageModel, images batches: [Tensor]) throws -> Result {
        let (layer, convolution) = try Self.firstConvolution(of: model)
        let shape = convolution.weight.shape
        let (outputs, channels, kernelHeight, kernelWidth) = (shape[0], shape[1], shape[2], shape[3])
        var covariance = PatchCovariance(channels: channels, kernel: (kernelHeight, kernelWidth))
        var remaining = images
        for batch in batches where remaining > 0 {
            guard batch.shape.count == 4, batch.shape[1] == channels, batch.shape[2] >= kernelHeight, batch.shape[3] >= kernelWidth else {
                throw TrainingError.cannotWhiten(layer: layer, reason: "images of shape \(batch.shape) do not fit its \(channels)-channel "
                                                 + "\(kernelHeight)x\(kernelWidth) kernel")
            }
            let count = min(remaining, batch.shape[0])
            let productsPerPatch = covariance.size * (covariance.size + 1) / 2
            try covariance.add(batch, images: count, stride: convolution.options.stride,
                               budget: Self.maximumProducts / productsPerPatch / max(images, 1))
            remaining -= count
        }
        guard covariance.count > 1 else {
            throw TrainingError.cannotWhiten(layer: layer, reason: "no training images to estimate the patch covariance from")
        }
        let (eigenvalues, eigenvectors) = Self.symmetricEigen(covariance.matrix(), size: covariance.size)
        let positive = (outputs + 1) / 2
        var weights = [Float](repeating: 0, count: outputs * covariance.size)
        for output in 0..<outputs {
            let direction = output < positive ? output : output - positive
            let scale = (output < positive ? 1 : -1) / (max(eigenvalues[direction], 0) + Double(epsilon)).squareRoot()
            for index in 0..<covariance.size {
                weights[output * covariance.size + index] = Float(eigenvectors[direction][index] * scale)
            }
        }
        convolution.weight.value = try Tensor(shape: shape, values: weights)
        if let bias = convolution.bias { bias.value = Tensor.zeros(bias.shape) }
        return Result(layer: layer, patches: covariance.count, eigenvalues: eigenvalues)
    }

    /// Eigenvalues, largest first, and the unit eigenvectors that go with them, of the
    /// symmetric `size` x `size` matrix `matrix` (row-major), by cyclic Jacobi rotations. Written
    /// here rather than taken from LAPACK: it runs once a run on at most a few hundred
    /// dimensions, where Jacobi converges in about ten sweeps to full double precision, and zoo
    /// links no LAPACK otherwise.
    static func symmetricEigen(_ matrix: [Double], size n: Int) -> (values: [Double], vectors: [[Double]]) {
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let scale = a.reduce(0) { $0 + $1 * $1 }
        for _ in 0..<100 {
            var offDiagonal = 0.0
            for p in 0..<n { for q in 0..<n where q != p { offDiagonal += a[p * n + q] * a[p * n + q] } }
            if offDiagonal <= 1e-30 * scale { break }
            for p in 0..<n - 1 {
                for q in p + 1..<n where a[p * n + q] != 0 {
                    // The rotation in the (p, q) plane that zeroes a[p][q] (Numerical Recipes' form).
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let (kp, kq) = (a[k * n + p], a[k * n + q])
                        a[k * n + p] = c * kp - s * kq
                        a[k * n + q] = s * kp + c * kq
                    }
                    for k in 0..<n {
                        let (pk, qk) = (a[p * n + k], a[q * n + k])
                        a[p * n + k] = c * pk - s * qk
                        a[q * n + k] = s * pk + c * qk
                    }
                    for k in 0..<n {
                        let (kp, kq) = (v[k * n + p], v[k * n + q])
                        v[k * n + p] = c * kp - s * kq
                        v[k * n + q] = s * kp + c * kq
                    }
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0] > a[$1 * n + $1] }
        return (order.map { a[$0 * n + $0] }, order.map { column in (0..<n).map { v[$0 * n + column] } })
    }
}

/// The running mean and second moment of an image batch's patches, in double precision, each
/// patch flattened as a convolution's weight is (`[channel, row, column]`).
struct PatchCovariance {
    let channels: Int
    let kernel: (height: Int, width: Int)
    var size: Int { channels * kernel.height * kernel.width }
    private(set) var count = 0
    private var sum: [Double]
    private var products: [Double]

    init(channels: Int, kernel: (Int, Int)) {
        self.channels = channels
        self.kernel = kernel
        sum = [Double](repeating: 0, count: channels * kernel.0 * kernel.1)
        products = [Double](repeating: 0, count: sum.count * sum.count)
    }

    /// Adds the patches of the first `images` images of `batch` at the convolution's `stride`,
    /// on a coarser grid where that gives more than `budget` patches an image.
    mutating func add(_ batch: Tensor, images: Int, stride: [Int], budget: Int) throws {
        let (height, width) = (batch.shape[2], batch.shape[3])
        var step = (max(stride[0], 1), max(stride[1], 1))
        func positions() -> Int { ((height - kernel.height) / step.0 + 1) * ((width - kernel.width) / step.1 + 1) }
        while positions() > max(budget, 1), step.0 < height || step.1 < width { step = (step.0 + 1, step.1 + 1) }
        let values = try batch.array()
        let n = size
        var patch = [Double](repeating: 0, count: n)
        for image in 0..<images {
            let base = image * channels * height * width
            for y in Swift.stride(from: 0, through: height - kernel.height, by: step.0) {
                for x in Swift.stride(from: 0, through: width - kernel.width, by: step.1) {
                    var index = 0
                    for channel in 0..<channels {
                        for row in 0..<kernel.height {
                            let start = base + (channel * height + y + row) * width + x
                            for column in 0..<kernel.width {
                                patch[index] = Double(values[start + column])
                                index += 1
                            }
                        }
                    }
                    for i in 0..<n {
                        sum[i] += patch[i]
                        let row = i * n
                        for j in i..<n { products[row + j] += patch[i] * patch[j] }
                    }
                    count += 1
                }
            }
        }
    }

    /// The covariance matrix, row-major and symmetric.
    func matrix() -> [Double] {
        let n = size
        let total = Double(count)
        var result = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                let value = products[i * n + j] / total - (sum[i] / total) * (sum[j] / total)
                result[i * n + j] = value
                result[j * n + i] = value
            }
        }
        return result
    }
}
