import CHDF5
import Foundation

/// A file opened with libhdf5, read-only, with the few operations the Keras readers need.
///
/// Only ever used inside an `HDF5Sandbox` child process: libhdf5 (1.10) trusts a file's
/// metadata, and a damaged file can make it crash, loop or allocate gigabytes. External links,
/// external raw-data files and filter plugins are refused, so a file cannot make libhdf5 open
/// other files or load code. libhdf5's error printing is switched off; failures become
/// `ParseError`s carrying libhdf5's description of the innermost error.
final class HDF5File {
    let id: hid_t
    /// The whole file, for bounding allocations claimed by metadata and checking data offsets.
    let bytes: Bytes
    var size: Int { bytes.count }

    /// Paths deeper than this are refused.
    static let maximumPathDepth = 128

    /// Runs `body` with libhdf5 hardened on this thread (the sandbox child has only one).
    static func hardened<T>(_ body: () throws -> T) rethrows -> T {
        zoo_h5_harden()
        return try body()
    }

    /// libhdf5's description of the most specific error on its error stack.
    static func lastError() -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        zoo_h5_innermost_error(&buffer, buffer.count)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? "libhdf5 reported an error" : text
    }

    static func failure(_ what: String) -> ParseError {
        .malformed("\(what) (libhdf5: \(lastError()))")
    }

    private init(id: hid_t, bytes: Bytes) {
        self.id = id
        self.bytes = bytes
    }

    /// Opens the HDF5 file at `path`, whose contents `bytes` maps.
    static func open(path: String, bytes: Bytes) throws -> HDF5File {
        try checkSuperblock(bytes)
        return try hardened {
            let id = zoo_h5_open_readonly(path)
            guard id >= 0 else { throw failure("libhdf5 cannot open the file") }
            return HDF5File(id: id, bytes: bytes)
        }
    }

    /// Opens an HDF5 file held in memory (an entry of a `.keras` archive) without copying it.
    static func open(image: Bytes) throws -> HDF5File {
        try checkSuperblock(image)
        guard let base = image.raw.baseAddress else { throw ParseError.truncated("truncated: the HDF5 data is empty") }
        return try hardened {
            let id = zoo_h5_open_image_readonly(base, image.count, "zoo-image")
            guard id >= 0 else { throw failure("libhdf5 cannot open the HDF5 data") }
            return HDF5File(id: id, bytes: image)
        }
    }

    /// Checks the superblock before libhdf5 sees the file: version, field sizes, and that the
    /// end-of-file address it records is not past the actual end (a truncated file).
    static func checkSuperblock(_ bytes: Bytes) throws {
        guard bytes.starts(with: HDF5Signature.bytes) else {
            throw ParseError.malformed("bad magic: not an HDF5 file")
        }
        let version = try bytes.uint8(at: 8, "HDF5 superblock version")
        let offsetSize: Int
        let addressesStart: Int
        let endAddressIndex: Int
        switch version {
        case 0, 1:
            offsetSize = Int(try bytes.uint8(at: 13, "HDF5 superblock"))
            let lengthSize = Int(try bytes.uint8(at: 14, "HDF5 superblock"))
            guard [2, 4, 8].contains(lengthSize) else {
                throw ParseError.malformed("HDF5 superblock has a bad length size \(lengthSize)")
            }
            addressesStart = version == 0 ? 24 : 28
            endAddressIndex = 2
        case 2, 3:
            offsetSize = Int(try bytes.uint8(at: 9, "HDF5 superblock"))
            addressesStart = 12
            endAddressIndex = 2
        default:
            throw ParseError.unsupported("HDF5 superblock version \(version) is not supported")
        }
        guard [2, 4, 8].contains(offsetSize) else {
            throw ParseError.malformed("HDF5 superblock has a bad offset size \(offsetSize)")
        }
        func address(_ index: Int) throws -> UInt64 {
            let start = addressesStart + index * offsetSize
            var value: UInt64 = 0
            for byte in 0..<offsetSize {
                value |= UInt64(try bytes.uint8(at: start + byte, "HDF5 superblock")) << (8 * UInt64(byte))
            }
            return value
        }
        let base = try address(0)
        let end = try address(endAddressIndex)
        guard base <= UInt64(bytes.count), end <= UInt64(bytes.count) - base else {
            throw ParseError.truncated(
                "truncated: the HDF5 superblock says the file ends at byte \(base &+ end), but it has \(bytes.count)")
        }
    }

    deinit {
        H5Fclose(id)
    }

    // MARK: Structure

    enum ObjectKind {
        case group, dataset, other
    }

    /// What `path` (absolute, "/"-separated) names, or nil when nothing does (or it lies
    /// behind an external link, or deeper than `maximumPathDepth`).
    func kind(of path: String) -> ObjectKind? {
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard components.count <= Self.maximumPathDepth, path.utf8.count < 1 << 20 else { return nil }
        return Self.hardened {
            // H5Lexists fails rather than answering when an intermediate group is missing, so
            // walk the path one component at a time.
            var prefix = ""
            for component in components {
                prefix += "/" + component
                guard H5Lexists(id, prefix, zoo_h5_link_access()) > 0 else { return nil }
            }
            let object = H5Oopen(id, path.isEmpty ? "/" : path, zoo_h5_link_access())
            guard object >= 0 else { return nil }
            defer { H5Oclose(object) }
            switch H5Iget_type(object) {
            case H5I_GROUP: return .group
            case H5I_DATASET: return .dataset
            default: return .other
            }
        }
    }

    /// The file address of the object at `path` (the same for every hard link to it), or nil.
    func address(of path: String) -> UInt64? {
        Self.hardened {
            let object = H5Oopen(id, path.isEmpty ? "/" : path, zoo_h5_link_access())
            guard object >= 0 else { return nil }
            defer { H5Oclose(object) }
            let address = zoo_h5_object_address(object)
            return address == zoo_h5_undefined_address() ? nil : UInt64(address)
        }
    }

    /// The names of a group's members, in libhdf5's name order.
    func members(of path: String) throws -> [String] {
        try Self.hardened {
            let group = H5Gopen2(id, path, zoo_h5_group_access())
            guard group >= 0 else { throw Self.failure("cannot open group \(quoted(path))") }
            defer { H5Gclose(group) }
            var info = H5G_info_t()
            guard H5Gget_info(group, &info) >= 0 else { throw Self.failure("cannot read group \(quoted(path))") }
            guard let count = Checked.int(info.nlinks), count <= size else {
                throw ParseError.malformed("group \(quoted(path)) claims \(info.nlinks) members")
            }
            var names: [String] = []
            names.reserveCapacity(count)
            for index in 0..<count {
                let length = H5Lget_name_by_idx(
                    group, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), nil, 0, zoo_h5_link_access())
                guard length >= 0, length < 1 << 20 else {
                    throw Self.failure("cannot read member \(index) of \(quoted(path))")
                }
                var buffer = [CChar](repeating: 0, count: length + 1)
                guard H5Lget_name_by_idx(
                    group, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), &buffer, length + 1, zoo_h5_link_access()) >= 0
                else {
                    throw Self.failure("cannot read member \(index) of \(quoted(path))")
                }
                names.append(try Self.text(buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, "a member name of \(quoted(path))"))
            }
            return names
        }
    }

    /// Names are used to build paths that the probe also follows byte for byte, so they are
    /// decoded strictly: invalid UTF-8 is an error, not silently replaced.
    static func text(_ bytes: [UInt8], _ what: String) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ParseError.malformed("\(what) is not valid UTF-8")
        }
        return text
    }

    // MARK: Attributes

    func hasAttribute(_ name: String, at path: String) -> Bool {
        Self.hardened {
            let object = H5Oopen(id, path, zoo_h5_link_access())
            guard object >= 0 else { return false }
            defer { H5Oclose(object) }
            return H5Aexists(object, name) > 0
        }
    }

    /// A string attribute as a list (a scalar gives one element). Fixed- and variable-length,
    /// ASCII and UTF-8 are all accepted; fixed-length padding (NULs, or spaces for SPACEPAD) is removed.
    func stringAttribute(_ name: String, at path: String) throws -> [String] {
        try withAttribute(name, at: path) { attribute in
            try strings(type: H5Aget_type(attribute), space: H5Aget_space(attribute),
                        what: "attribute \(quoted(name)) of \(quoted(path))") { H5Aread(attribute, $0, $1) }
        }
    }

    /// An integer scalar attribute.
    func integerAttribute(_ name: String, at path: String) throws -> Int64 {
        try withAttribute(name, at: path) { attribute in
            let space = H5Aget_space(attribute)
            defer { H5Sclose(space) }
            guard H5Sget_simple_extent_npoints(space) == 1 else {
                throw ParseError.malformed("attribute \(quoted(name)) of \(quoted(path)) is not a single value")
            }
            var value: Int64 = 0
            guard H5Aread(attribute, zoo_H5T_NATIVE_INT64(), &value) >= 0 else {
                throw Self.failure("attribute \(quoted(name)) of \(quoted(path)) is not an integer")
            }
            return value
        }
    }

    /// Runs `body` on the open attribute `name` of the object at `path`.
    private func withAttribute<T>(_ name: String, at path: String, _ body: (hid_t) throws -> T) throws -> T {
        try Self.hardened {
            let object = H5Oopen(id, path, zoo_h5_link_access())
            guard object >= 0 else { throw Self.failure("cannot open \(quoted(path))") }
            defer { H5Oclose(object) }
            let attribute = H5Aopen(object, name, zoo_H5P_DEFAULT())
            guard attribute >= 0 else { throw Self.failure("cannot open attribute \(quoted(name)) of \(quoted(path))") }
            defer { H5Aclose(attribute) }
            return try body(attribute)
        }
    }

    /// A dataset of strings, read as ``stringAttribute(_:at:)`` reads an attribute.
    func stringDataset(_ path: String) throws -> [String] {
        try Self.hardened {
            try withDataset(path) { dataset in
                try strings(type: H5Dget_type(dataset), space: H5Dget_space(dataset), what: "dataset \(quoted(path))") {
                    H5Dread(dataset, $0, zoo_H5S_ALL(), zoo_H5S_ALL(), zoo_H5P_DEFAULT(), $1)
                }
            }
        }
    }

    /// Strings of `type` over `space` (both closed here), read by `read(memoryType, buffer)`.
    private func strings(type: hid_t, space: hid_t, what: String,
                         read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> [String] {
        guard type >= 0 else { throw Self.failure("cannot read the type of \(what)") }
        defer { H5Tclose(type) }
        guard space >= 0 else { throw Self.failure("cannot read the shape of \(what)") }
        defer { H5Sclose(space) }

        let points = H5Sget_simple_extent_npoints(space)
        guard points >= 0, points <= size else {
            throw ParseError.malformed("\(what) claims \(points) strings")
        }
        let count = Int(points)
        // Keras writes an empty list as an empty float64 array: no strings, whatever the type.
        if count == 0 { return [] }
        guard H5Tget_class(type) == H5T_STRING else {
            throw ParseError.malformed("\(what) is not a string")
        }
        let characterSet = H5Tget_cset(type)

        let memoryType = H5Tcopy(zoo_H5T_C_S1())
        guard memoryType >= 0 else { throw Self.failure("cannot make a string type") }
        defer { H5Tclose(memoryType) }
        H5Tset_cset(memoryType, characterSet)

        if H5Tis_variable_str(type) > 0 {
            H5Tset_size(memoryType, zoo_H5T_VARIABLE())
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            guard pointers.withUnsafeMutableBytes({ read(memoryType, $0.baseAddress!) }) >= 0 else {
                throw Self.failure("cannot read \(what)")
            }
            let strings = pointers.map { pointer in pointer.map { String(validatingCString: $0) } ?? "" }
            H5Dvlen_reclaim(memoryType, space, zoo_H5P_DEFAULT(), &pointers)
            guard !strings.contains(nil) else {
                throw ParseError.malformed("\(what) is not valid UTF-8")
            }
            return strings.compactMap { $0 }
        }

        let width = H5Tget_size(type)
        guard width > 0, let total = Checked.multiply(count, width), total <= size else {
            throw ParseError.malformed("\(what) claims \(count) strings of \(width) bytes")
        }
        // Read with NULLPAD so that a string filling its whole width keeps its last
        // character (the default NULLTERM would overwrite it with a terminator).
        H5Tset_size(memoryType, width)
        H5Tset_strpad(memoryType, H5T_STR_NULLPAD)
        let spacePadded = H5Tget_strpad(type) == H5T_STR_SPACEPAD
        var buffer = [UInt8](repeating: 0, count: total)
        guard buffer.withUnsafeMutableBytes({ read(memoryType, $0.baseAddress!) }) >= 0 else {
            throw Self.failure("cannot read \(what)")
        }
        return try (0..<count).map { index in
            var characters = buffer[(index * width)..<((index + 1) * width)].prefix { $0 != 0 }
            if spacePadded {
                while characters.last == 0x20 { characters = characters.dropLast() }
            }
            return try Self.text(Array(characters), what)
        }
    }

    // MARK: Datasets

    /// A dataset's element type, shape and where its data is.
    struct DatasetInfo {
        let dtype: DType
        let shape: [Int]
        let bigEndian: Bool
        /// File offset of contiguous data, to read straight from the mapping; nil otherwise.
        let contiguousOffset: Int?
    }

    func datasetInfo(_ path: String) throws -> DatasetInfo {
        try Self.hardened {
            try withDataset(path) { dataset in try describe(dataset, path: path) }
        }
    }

    private func withDataset<T>(_ path: String, _ body: (hid_t) throws -> T) throws -> T {
        guard path.split(separator: "/").count <= Self.maximumPathDepth else {
            throw ParseError.malformed("dataset path \(quoted(path)) is nested too deeply")
        }
        let dataset = H5Dopen2(id, path, zoo_h5_dataset_access())
        guard dataset >= 0 else { throw Self.failure("cannot open dataset \(quoted(path))") }
        defer { H5Dclose(dataset) }
        return try body(dataset)
    }

    private func describe(_ dataset: hid_t, path: String) throws -> DatasetInfo {
        let type = H5Dget_type(dataset)
        guard type >= 0 else { throw Self.failure("cannot read the type of \(quoted(path))") }
        defer { H5Tclose(type) }
        let space = H5Dget_space(dataset)
        guard space >= 0 else { throw Self.failure("cannot read the shape of \(quoted(path))") }
        defer { H5Sclose(space) }

        var shape: [Int] = []
        switch H5Sget_simple_extent_type(space) {
        case H5S_SCALAR:
            break
        case H5S_SIMPLE:
            let rank = H5Sget_simple_extent_ndims(space)
            guard rank >= 0, rank <= 32 else { throw ParseError.malformed("dataset \(quoted(path)) has rank \(rank)") }
            var dimensions = [hsize_t](repeating: 0, count: Int(rank))
            guard H5Sget_simple_extent_dims(space, &dimensions, nil) == rank else {
                throw Self.failure("cannot read the dimensions of \(quoted(path))")
            }
            for dimension in dimensions {
                guard let size = Checked.int(dimension) else {
                    throw ParseError.malformed("dataset \(quoted(path)) has an impossible dimension \(dimension)")
                }
                shape.append(size)
            }
        default:
            throw ParseError.malformed("dataset \(quoted(path)) has no data (null dataspace)")
        }

        let width = H5Tget_size(type)
        let bigEndian = H5Tget_order(type) == H5T_ORDER_BE
        let dtype: DType
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            var signPosition = 0, exponentPosition = 0, exponentSize = 0, mantissaPosition = 0, mantissaSize = 0
            H5Tget_fields(type, &signPosition, &exponentPosition, &exponentSize, &mantissaPosition, &mantissaSize)
            let fields = [signPosition, exponentPosition, exponentSize, mantissaPosition, mantissaSize]
            switch (width, fields) {
            case (2, [15, 10, 5, 0, 10]): dtype = .f16
            case (2, [15, 7, 8, 0, 7]): dtype = .bf16
            case (4, [31, 23, 8, 0, 23]): dtype = .f32
            case (8, [63, 52, 11, 0, 52]): dtype = .f64
            default:
                throw ParseError.unsupported("unsupported dtype: dataset \(quoted(path)) holds a \(width)-byte float with fields \(fields)")
            }
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch width {
            case 1: dtype = signed ? .i8 : .u8
            case 2: dtype = signed ? .i16 : .u16
            case 4: dtype = signed ? .i32 : .u32
            case 8: dtype = signed ? .i64 : .u64
            default: throw ParseError.unsupported("unsupported dtype: dataset \(quoted(path)) holds \(width)-byte integers")
            }
        case H5T_ENUM where width == 1:
            // h5py stores NumPy bool as an enum {FALSE = 0, TRUE = 1} over int8.
            dtype = .bool
        case H5T_OPAQUE where width == 2 && (try? stringAttribute("dtype", at: path)) == ["bfloat16"]:
            // Keras 3 stores bfloat16 as 2-byte opaque data tagged with a `dtype` attribute.
            dtype = .bf16
        default:
            throw ParseError.unsupported("unsupported dtype: dataset \(quoted(path)) has HDF5 type class \(H5Tget_class(type).rawValue) of \(width) bytes")
        }
        guard let count = Checked.elementCount(shape), let byteCount = Checked.multiply(count, dtype.byteSize),
            byteCount <= size * Deflate.maximumExpansion + (1 << 20)
        else {
            throw ParseError.malformed(
                "dataset \(quoted(path)) claims shape \(shape), more data than a file of \(size) bytes can hold")
        }

        var layout: Int32 = 3
        var offset = zoo_h5_undefined_address()
        var externalFiles: Int32 = 0
        guard zoo_h5_dataset_storage(dataset, &layout, &offset, &externalFiles) >= 0 else {
            throw Self.failure("cannot read the storage layout of \(quoted(path))")
        }
        guard externalFiles == 0 else {
            throw ParseError.unsupported("dataset \(quoted(path)) keeps its data in external files, which zoo does not open")
        }
        guard layout <= 2 else {
            throw ParseError.unsupported("dataset \(quoted(path)) is a virtual dataset, which zoo does not read")
        }
        var contiguousOffset: Int?
        if layout == 1 && offset != zoo_h5_undefined_address() {
            guard let start = Checked.int(UInt64(offset)), bytes.contains(offset: start, length: byteCount) else {
                throw ParseError.truncated(
                    "truncated: dataset \(quoted(path)) needs \(byteCount) bytes at offset \(offset), past the end of the file (\(size) bytes)")
            }
            contiguousOffset = start
        }
        return DatasetInfo(dtype: dtype, shape: shape, bigEndian: bigEndian, contiguousOffset: contiguousOffset)
    }

    /// The stored bytes of a dataset that is not contiguous (compact, chunked or unallocated),
    /// read through libhdf5 without conversion.
    func rawData(_ path: String) throws -> [UInt8] {
        try Self.hardened {
            try withDataset(path) { dataset in
                let info = try describe(dataset, path: path)
                let byteCount = info.shape.reduce(1, *) * info.dtype.byteSize
                if byteCount == 0 { return [] }
                let type = H5Dget_type(dataset)
                guard type >= 0 else { throw Self.failure("cannot read the type of \(quoted(path))") }
                defer { H5Tclose(type) }
                var data = [UInt8](repeating: 0, count: byteCount)
                guard H5Dread(dataset, type, zoo_H5S_ALL(), zoo_H5S_ALL(), zoo_H5P_DEFAULT(), &data) >= 0 else {
                    throw Self.failure("cannot read dataset \(quoted(path))")
                }
                return data
            }
        }
    }
}

/// The 8-byte signature at the start of every HDF5 file (without a user block).
enum HDF5Signature {
    static let bytes: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
}

extension HDF5File {
    /// A listing entry for the dataset at `datasetPath`: contiguous data by offset, anything
    /// else read now (the child is the only place libhdf5 may read it).
    func listingEntry(name: String, datasetPath: String) throws -> HDF5Listing.Tensor {
        try withContext("dataset \(quoted(datasetPath))") {
            let info = try datasetInfo(datasetPath)
            let source: HDF5Listing.Source =
                if let offset = info.contiguousOffset {
                    .contiguous(offset: offset)
                } else {
                    .inline(try rawData(datasetPath))
                }
            return HDF5Listing.Tensor(
                info: TensorInfo(name: name, dtype: info.dtype, shape: info.shape), bigEndian: info.bigEndian,
                source: source, datasetPath: datasetPath)
        }
    }
}
