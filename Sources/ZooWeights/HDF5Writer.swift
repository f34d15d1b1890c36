import CHDF5
import Foundation

/// Writes an HDF5 file through libhdf5: float32 datasets laid out in advance and filled a block
/// of rows at a time, whole integer and string datasets, and attributes on the root group.
///
/// Built for files that grow over a long run and must survive a kill: row datasets are chunked
/// with every chunk allocated when the dataset is created, so later row writes change no
/// metadata, only data at fixed places. After ``flush()`` the file on disk is consistent; a
/// process killed later leaves a file whose structure is still the flushed one, and rows
/// written again land where they did before. Used from one thread at a time (Debian's libhdf5
/// is not thread-safe: every call holds ``HDF5Lock``, which the readers' sandbox also takes to
/// fork, so a child never starts amid a write); only zoo's own files are written, so this runs
/// in-process, unlike the readers.
public final class HDF5Writer {
    private let file: hid_t
    /// Link creation that makes missing intermediate groups.
    private let linkCreation: hid_t
    /// Dataset creation without modification times, so that the same content gives the same bytes.
    private let untimedCreation: hid_t
    private var datasets: [String: hid_t] = [:]
    public let path: String

    private init(file: hid_t, path: String) {
        self.file = file
        self.path = path
        linkCreation = H5Pcreate(zoo_H5P_LINK_CREATE())
        H5Pset_create_intermediate_group(linkCreation, 1)
        untimedCreation = H5Pcreate(zoo_H5P_DATASET_CREATE())
        H5Pset_obj_track_times(untimedCreation, false)
    }

    /// Creates (or truncates) the file at `path`.
    public static func create(_ path: String) throws -> HDF5Writer {
        try HDF5Lock.run {
            zoo_h5_harden()
            let file = H5Fcreate(path, zoo_H5F_ACC_TRUNC(), zoo_H5P_DEFAULT(), zoo_H5P_DEFAULT())
            guard file >= 0 else { throw failure(path, "cannot create the file") }
            return HDF5Writer(file: file, path: path)
        }
    }

    /// Opens an existing file for writing more rows (to continue an interrupted run).
    public static func openForUpdate(_ path: String) throws -> HDF5Writer {
        try HDF5Lock.run {
            zoo_h5_harden()
            let file = H5Fopen(path, zoo_H5F_ACC_RDWR(), zoo_H5P_DEFAULT())
            guard file >= 0 else { throw failure(path, "cannot open the file for writing") }
            return HDF5Writer(file: file, path: path)
        }
    }

    deinit {
        HDF5Lock.run {
            for dataset in datasets.values { H5Dclose(dataset) }
            H5Pclose(linkCreation)
            H5Pclose(untimedCreation)
            H5Fclose(file)
        }
    }

    private static func failure(_ path: String, _ what: String) -> WeightFileError {
        WeightFileError(path: path, kind: .io, message: "\(what) (libhdf5: \(HDF5File.lastError()))")
    }

    private func failure(_ what: String) -> WeightFileError { Self.failure(path, what) }

    /// Creates the float32 dataset `name` (groups on the way are created) of `shape`, chunked
    /// along the first dimension in blocks of about `chunkBytes`, all allocated now.
    public func createRows(_ name: String, shape: [Int], chunkBytes: Int = 1 << 20) throws {
        try HDF5Lock.run {
            precondition(!shape.isEmpty)
            let rowElements = shape.dropFirst().reduce(1, *)
            var dimensions = shape.map { hsize_t($0) }
            var chunk = dimensions
            chunk[0] = hsize_t(max(1, min(shape[0], chunkBytes / max(1, rowElements * 4))))
            let space = H5Screate_simple(Int32(shape.count), &dimensions, nil)
            defer { H5Sclose(space) }
            let creation = H5Pcreate(zoo_H5P_DATASET_CREATE())
            defer { H5Pclose(creation) }
            guard shape[0] == 0 || (H5Pset_chunk(creation, Int32(shape.count), &chunk) >= 0
                && H5Pset_alloc_time(creation, H5D_ALLOC_TIME_EARLY) >= 0
                && H5Pset_fill_time(creation, H5D_FILL_TIME_NEVER) >= 0)
                && H5Pset_obj_track_times(creation, false) >= 0
            else { throw failure("cannot set up the chunks of \(quoted(name))") }
            let dataset = H5Dcreate2(file, name, zoo_H5T_IEEE_F32LE(), space, linkCreation, creation, zoo_H5P_DEFAULT())
            guard dataset >= 0 else { throw failure("cannot create dataset \(quoted(name))") }
            datasets[name] = dataset
        }
    }

    /// Writes `count` rows of the float32 dataset `name` from row `start`.
    public func writeRows(_ name: String, start: Int, count: Int, values: [Float]) throws {
        try HDF5Lock.run {
            let dataset = try open(name)
            let fileSpace = H5Dget_space(dataset)
            guard fileSpace >= 0 else { throw failure("cannot read the shape of \(quoted(name))") }
            defer { H5Sclose(fileSpace) }
            let rank = Int(H5Sget_simple_extent_ndims(fileSpace))
            var dimensions = [hsize_t](repeating: 0, count: rank)
            H5Sget_simple_extent_dims(fileSpace, &dimensions, nil)
            var offset = [hsize_t](repeating: 0, count: rank)
            offset[0] = hsize_t(start)
            var block = dimensions
            block[0] = hsize_t(count)
            let rowElements = dimensions.dropFirst().reduce(1) { $0 * Int($1) }
            guard start >= 0, start + count <= Int(dimensions[0]), values.count == count * rowElements else {
                throw WeightFileError(path: path, kind: .malformed,
                                      message: "rows \(start)..<\(start + count) of \(quoted(name)) (shape \(dimensions.map { Int($0) })) do not fit \(values.count) values")
            }
            guard count > 0 else { return }
            let memorySpace = H5Screate_simple(Int32(rank), &block, nil)
            defer { H5Sclose(memorySpace) }
            guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &offset, nil, &block, nil) >= 0,
                  values.withUnsafeBufferPointer({ H5Dwrite(dataset, zoo_H5T_NATIVE_FLOAT(), memorySpace, fileSpace, zoo_H5P_DEFAULT(), $0.baseAddress) }) >= 0
            else { throw failure("cannot write rows \(start)..<\(start + count) of \(quoted(name))") }
        }
    }

    /// Writes the whole int64 dataset `name`.
    public func writeIntegers(_ name: String, _ values: [Int64]) throws {
        try HDF5Lock.run {
            var dimensions = [hsize_t(values.count)]
            let space = H5Screate_simple(1, &dimensions, nil)
            defer { H5Sclose(space) }
            let dataset = H5Dcreate2(file, name, zoo_H5T_STD_I64LE(), space, linkCreation, untimedCreation, zoo_H5P_DEFAULT())
            guard dataset >= 0 else { throw failure("cannot create dataset \(quoted(name))") }
            defer { H5Dclose(dataset) }
            guard values.withUnsafeBufferPointer({ H5Dwrite(dataset, zoo_H5T_NATIVE_INT64(), zoo_H5S_ALL(), zoo_H5S_ALL(), zoo_H5P_DEFAULT(), $0.baseAddress) }) >= 0
            else { throw failure("cannot write dataset \(quoted(name))") }
        }
    }

    /// Writes the dataset `name` of variable-length UTF-8 strings (h5py reads it with `.asstr()`).
    public func writeStrings(_ name: String, _ values: [String]) throws {
        try HDF5Lock.run {
            var dimensions = [hsize_t(values.count)]
            let space = H5Screate_simple(1, &dimensions, nil)
            defer { H5Sclose(space) }
            let type = try Self.utf8StringType()
            defer { H5Tclose(type) }
            let dataset = H5Dcreate2(file, name, type, space, linkCreation, untimedCreation, zoo_H5P_DEFAULT())
            guard dataset >= 0 else { throw failure("cannot create dataset \(quoted(name))") }
            defer { H5Dclose(dataset) }
            let status = Self.withCStrings(values) { pointers in
                H5Dwrite(dataset, type, zoo_H5S_ALL(), zoo_H5S_ALL(), zoo_H5P_DEFAULT(), pointers.baseAddress)
            }
            guard status >= 0 else { throw failure("cannot write dataset \(quoted(name))") }
        }
    }

    /// Sets the root group's attribute `name` to a string (a list of strings when `values`
    /// has other than one element), replacing an earlier value.
    public func setAttribute(_ name: String, strings values: [String]) throws {
        try HDF5Lock.run {
            let type = try Self.utf8StringType()
            defer { H5Tclose(type) }
            try setAttribute(name, type: type, count: values.count == 1 ? nil : values.count) { attribute in
                Self.withCStrings(values) { pointers in H5Awrite(attribute, type, pointers.baseAddress) }
            }
        }
    }

    /// Sets the root group's attribute `name` to an int64 scalar; an existing one is
    /// overwritten in place, so the file's layout does not change.
    public func setAttribute(_ name: String, integer value: Int64) throws {
        try HDF5Lock.run {
            let write: (hid_t) -> herr_t = { attribute in withUnsafePointer(to: value) { H5Awrite(attribute, zoo_H5T_NATIVE_INT64(), $0) } }
            if H5Aexists(file, name) > 0 {
                let attribute = H5Aopen(file, name, zoo_H5P_DEFAULT())
                guard attribute >= 0 else { throw failure("cannot open attribute \(quoted(name))") }
                defer { H5Aclose(attribute) }
                guard write(attribute) >= 0 else { throw failure("cannot write attribute \(quoted(name))") }
                return
            }
            try setAttribute(name, type: zoo_H5T_STD_I64LE(), count: nil, write: write)
        }
    }

    /// Writes everything libhdf5 holds in memory to the file.
    public func flush() throws {
        try HDF5Lock.run {
            guard H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 else { throw failure("cannot flush the file") }
        }
    }

    private func setAttribute(_ name: String, type: hid_t, count: Int?, write: (hid_t) -> herr_t) throws {
        if H5Aexists(file, name) > 0, H5Adelete(file, name) < 0 { throw failure("cannot replace attribute \(quoted(name))") }
        var dimensions = [hsize_t(count ?? 1)]
        let space = count == nil ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dimensions, nil)
        defer { H5Sclose(space) }
        let attribute = H5Acreate2(file, name, type, space, zoo_H5P_DEFAULT(), zoo_H5P_DEFAULT())
        guard attribute >= 0 else { throw failure("cannot create attribute \(quoted(name))") }
        defer { H5Aclose(attribute) }
        guard write(attribute) >= 0 else { throw failure("cannot write attribute \(quoted(name))") }
    }

    private func open(_ name: String) throws -> hid_t {
        if let dataset = datasets[name] { return dataset }
        let dataset = H5Dopen2(file, name, zoo_H5P_DEFAULT())
        guard dataset >= 0 else { throw failure("no dataset \(quoted(name))") }
        datasets[name] = dataset
        return dataset
    }

    private static func utf8StringType() throws -> hid_t {
        let type = H5Tcopy(zoo_H5T_C_S1())
        guard type >= 0, H5Tset_size(type, zoo_H5T_VARIABLE()) >= 0, H5Tset_cset(type, H5T_CSET_UTF8) >= 0 else {
            throw WeightFileError(path: "", kind: .io, message: "libhdf5 cannot make a string type")
        }
        return type
    }

    private static func withCStrings<T>(_ values: [String], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> T) -> T {
        let copies = values.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        return copies.map { UnsafePointer($0) }.withUnsafeBufferPointer(body)
    }
}


/// Serializes libhdf5 use in this process: writers hold it for every call, and the readers'
/// sandbox holds it while it forks, so that a child never inherits libhdf5 halfway through a call.
enum HDF5Lock {
    private static let lock = NSLock()

    static func run<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
