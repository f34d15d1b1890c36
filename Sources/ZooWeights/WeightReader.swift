import Foundation

/// The weight-file formats zoo reads.
public enum WeightFormat: String, Sendable, CaseIterable {
    /// Keras legacy HDF5 (`save_weights("x.h5")` or `model.save("x.h5")`, Keras 2.x, tf.keras, Keras 3 `.h5`).
    case kerasH5 = "keras-h5"
    /// Keras 3 `.weights.h5` (`layers/<key>/vars/<i>`).
    case kerasWeightsH5 = "keras3-weights-h5"
    /// Keras 3 `.keras` zip archive (`config.json`, `metadata.json`, `model.weights.h5`).
    case kerasArchive = "keras-archive"
    /// `torch.save` zip format (PyTorch 1.6 and later).
    case torchZip = "torch-zip"
    /// `torch.save` legacy format (a stream of pickles followed by raw storages; before PyTorch 1.6).
    case torchLegacy = "torch-legacy"
    /// Hugging Face safetensors.
    case safetensors
    /// A NumPy `.npy` array.
    case npy
    /// A NumPy `.npz` archive of `.npy` arrays.
    case npz
    /// A zoo feature file in HDF5 (what `zoo extract` writes; see ``FeatureFile``).
    case zooFeaturesH5 = "zoo-features-h5"
}

/// Element types a tensor may be stored as. Every one of them can be read as `Float`.
public enum DType: String, Sendable, CaseIterable {
    /// IEEE half, bfloat16, single and double precision floats.
    case f16, bf16, f32, f64
    /// Signed integers of 8 to 64 bits.
    case i8, i16, i32, i64
    /// Unsigned integers of 8 to 64 bits.
    case u8, u16, u32, u64
    /// One byte per element, 0 is false.
    case bool

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .i8, .u8, .bool: 1
        case .f16, .bf16, .i16, .u16: 2
        case .f32, .i32, .u32: 4
        case .f64, .i64, .u64: 8
        }
    }
}

/// A tensor's name, element type and shape, as listed by a weight file.
public struct TensorInfo: Sendable, Hashable {
    /// The name as the file spells it (for Keras HDF5: `layer/weight` paths, see ``WeightFormat``).
    public var name: String
    /// The element type stored in the file.
    public var dtype: DType
    /// The dimensions, outermost first; `[]` is a scalar.
    public var shape: [Int]

    /// Creates a tensor description.
    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    /// The number of elements (1 for a scalar, 0 when any dimension is 0).
    ///
    /// Readers only list shapes whose element count fits in the file, so this never overflows
    /// for a listed tensor; for a hand-made shape that would overflow it saturates at `Int.max`.
    public var elementCount: Int {
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            if overflow { return Int.max }
            count = product
        }
        return count
    }
}

/// What a weight file says about itself besides its tensors.
public struct WeightMetadata: Sendable, Equatable {
    /// Versions of the software that wrote the file, e.g. `keras_version`, `backend`,
    /// `pytorch format version`, `numpy format version`.
    public var writerVersions: [String: String]
    /// The Keras model configuration (JSON text) when the file carries one.
    public var kerasModelConfig: String?
    /// Keras legacy HDF5 `layer_names`, in order, layers without weights included.
    public var kerasLayerNames: [String]?
    /// Keras 3 `vars` groups' `name` attributes (the layer's own name), keyed by the path of
    /// the group that holds `vars`, e.g. `layers/conv2d` → `conv1`. Empty for other formats
    /// and for Keras 3 files written before the attribute existed. The model's own `/vars`
    /// group is keyed by the empty path.
    public var kerasLayerNamesByPath: [String: String]
    /// Anything else the file records: safetensors `__metadata__`, Keras `training_config`, ...
    public var extra: [String: String]

    /// Creates metadata; every field defaults to empty.
    public init(
        writerVersions: [String: String] = [:],
        kerasModelConfig: String? = nil,
        kerasLayerNames: [String]? = nil,
        kerasLayerNamesByPath: [String: String] = [:],
        extra: [String: String] = [:]
    ) {
        self.writerVersions = writerVersions
        self.kerasModelConfig = kerasModelConfig
        self.kerasLayerNames = kerasLayerNames
        self.kerasLayerNamesByPath = kerasLayerNamesByPath
        self.extra = extra
    }
}

/// An open weight file: its tensors are listed up front and read one at a time on demand.
///
/// Readers never run code from the file. Listing reads only headers; tensor data is read by
/// ``floats(_:)``. Readers are safe to share between threads.
public protocol WeightReader: AnyObject, Sendable {
    /// The file this reader was opened on.
    var url: URL { get }
    /// The detected format.
    var format: WeightFormat { get }
    /// Writer versions, Keras configuration and other file-level information.
    var metadata: WeightMetadata { get }
    /// Every tensor in file order.
    var tensors: [TensorInfo] { get }
    /// The tensor called `name`, or nil.
    func info(_ name: String) -> TensorInfo?
    /// The tensor's values in row-major (C) order, converted to `Float`.
    ///
    /// f16, bf16 and f64 are converted with IEEE round-to-nearest, integers to the nearest
    /// `Float`, bool to 0 or 1. Throws ``WeightFileError`` when the name is unknown or the
    /// data is damaged.
    func floats(_ name: String) throws -> [Float]
}
