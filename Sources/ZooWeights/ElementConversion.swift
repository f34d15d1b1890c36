/// Turns stored elements of any `DType` into `Float`s.
enum ElementConversion {
    /// Converts `count` contiguous elements at the start of `bytes`.
    static func floats(
        _ bytes: UnsafeRawBufferPointer, dtype: DType, count: Int, bigEndian: Bool = false
    ) throws -> [Float] {
        guard count >= 0, let needed = Checked.multiply(count, dtype.byteSize), needed <= bytes.count else {
            throw ParseError.truncated("tensor data needs \(count) \(dtype.rawValue) elements, have \(bytes.count) bytes")
        }
        if count == 0 { return [] }
        if dtype == .f32 && !bigEndian && isLittleEndianHost {
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: bytes[0..<needed]))
                initialized = count
            }
        }
        let load = loader(for: dtype, bigEndian: bigEndian)
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                buffer[index] = load(bytes, index)
            }
            initialized = count
        }
    }

    /// Gathers a strided view of a storage: element `(i0, ..., in)` is storage element
    /// `offset + Σ ik·strides[k]`. Offsets and strides count elements, not bytes.
    static func floats(
        storage: UnsafeRawBufferPointer, storageCount: Int, dtype: DType, offset: Int, shape: [Int],
        strides: [Int], bigEndian: Bool = false
    ) throws -> [Float] {
        guard shape.count == strides.count else {
            throw ParseError.malformed("tensor has \(shape.count) dimensions but \(strides.count) strides")
        }
        guard let count = Checked.elementCount(shape) else {
            throw ParseError.malformed("shape \(shape) is too large")
        }
        guard offset >= 0, offset <= storageCount else {
            throw ParseError.malformed("storage offset \(offset) is past the storage's \(storageCount) elements")
        }
        guard let storageBytes = Checked.multiply(storageCount, dtype.byteSize), storageBytes <= storage.count else {
            throw ParseError.truncated("storage of \(storageCount) \(dtype.rawValue) elements has only \(storage.count) bytes")
        }
        if count == 0 { return [] }
        // The furthest element the view touches must lie inside the storage.
        var last = offset
        for (size, stride) in zip(shape, strides) {
            guard stride >= 0 else { throw ParseError.unsupported("negative stride \(stride)") }
            guard let step = Checked.multiply(size - 1, stride), let sum = Checked.add(last, step) else {
                throw ParseError.malformed("strides \(strides) with shape \(shape) overflow")
            }
            last = sum
        }
        guard last < storageCount else {
            throw ParseError.malformed(
                "view (offset \(offset), shape \(shape), strides \(strides)) reaches element \(last) of a storage of \(storageCount)")
        }
        if isRowMajorContiguous(shape: shape, strides: strides) {
            let begin = offset * dtype.byteSize
            return try floats(
                UnsafeRawBufferPointer(rebasing: storage[begin..<storage.count]), dtype: dtype, count: count,
                bigEndian: bigEndian)
        }
        let load = loader(for: dtype, bigEndian: bigEndian)
        var index = [Int](repeating: 0, count: shape.count)
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            var element = offset
            for position in 0..<count {
                buffer[position] = load(storage, element)
                // Advance the odometer, innermost dimension first.
                var axis = shape.count - 1
                while axis >= 0 {
                    // Wrapping arithmetic: a size-1 axis may carry any stride, and the
                    // subtraction below undoes the addition exactly.
                    index[axis] += 1
                    element &+= strides[axis]
                    if index[axis] < shape[axis] { break }
                    element &-= strides[axis] &* shape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
            initialized = count
        }
    }

    /// Strides of a column-major (Fortran-order) array of `shape`, in elements.
    static func columnMajorStrides(_ shape: [Int]) -> [Int] {
        var strides: [Int] = []
        var stride = 1
        for size in shape {
            strides.append(stride)
            stride = Checked.multiply(stride, max(size, 1)) ?? stride
        }
        return strides
    }

    /// Strides of a row-major (C-order) array of `shape`, in elements.
    static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var stride = 1
        for axis in shape.indices.reversed() {
            strides[axis] = stride
            stride = Checked.multiply(stride, max(shape[axis], 1)) ?? stride
        }
        return strides
    }

    static func isRowMajorContiguous(shape: [Int], strides: [Int]) -> Bool {
        var expected = 1
        for axis in shape.indices.reversed() where shape[axis] != 1 {
            if strides[axis] != expected { return false }
            expected *= shape[axis]
        }
        return true
    }

    static let isLittleEndianHost = 1.littleEndian == 1

    /// A function that reads element `index` of a buffer of `dtype` as a Float.
    private static func loader(for dtype: DType, bigEndian: Bool) -> (UnsafeRawBufferPointer, Int) -> Float {
        switch dtype {
        case .f32:
            return { bytes, index in Float(bitPattern: load(bytes, index, UInt32.self, bigEndian)) }
        case .f64:
            return { bytes, index in Float(Double(bitPattern: load(bytes, index, UInt64.self, bigEndian))) }
        case .f16:
            return { bytes, index in float(halfBits: load(bytes, index, UInt16.self, bigEndian)) }
        case .bf16:
            return { bytes, index in Float(bitPattern: UInt32(load(bytes, index, UInt16.self, bigEndian)) << 16) }
        case .i8:
            return { bytes, index in Float(Int8(bitPattern: load(bytes, index, UInt8.self, bigEndian))) }
        case .u8:
            return { bytes, index in Float(load(bytes, index, UInt8.self, bigEndian)) }
        case .bool:
            return { bytes, index in load(bytes, index, UInt8.self, bigEndian) == 0 ? 0 : 1 }
        case .i16:
            return { bytes, index in Float(Int16(bitPattern: load(bytes, index, UInt16.self, bigEndian))) }
        case .u16:
            return { bytes, index in Float(load(bytes, index, UInt16.self, bigEndian)) }
        case .i32:
            return { bytes, index in Float(Int32(bitPattern: load(bytes, index, UInt32.self, bigEndian))) }
        case .u32:
            return { bytes, index in Float(load(bytes, index, UInt32.self, bigEndian)) }
        case .i64:
            return { bytes, index in Float(Int64(bitPattern: load(bytes, index, UInt64.self, bigEndian))) }
        case .u64:
            return { bytes, index in Float(load(bytes, index, UInt64.self, bigEndian)) }
        }
    }

    @inline(__always)
    private static func load<T: FixedWidthInteger>(
        _ bytes: UnsafeRawBufferPointer, _ index: Int, _ type: T.Type, _ bigEndian: Bool
    ) -> T {
        let value = bytes.loadUnaligned(fromByteOffset: index &* MemoryLayout<T>.size, as: T.self)
        return bigEndian ? T(bigEndian: value) : T(littleEndian: value)
    }

    /// IEEE 754 binary16 to binary32 (exact: every half is a float).
    static func float(halfBits bits: UInt16) -> Float {
        let sign: Float = bits & 0x8000 == 0 ? 1 : -1
        let exponent = Int((bits >> 10) & 0x1f)
        let mantissa = UInt32(bits & 0x3ff)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa · 2^-24.
            return sign * Float(mantissa) * 0x1p-24
        case 0x1f:
            let signBit = UInt32(bits & 0x8000) << 16
            return Float(bitPattern: signBit | 0x7f80_0000 | (mantissa << 13))
        default:
            let signBit = UInt32(bits & 0x8000) << 16
            return Float(bitPattern: signBit | (UInt32(exponent + 112) << 23) | (mantissa << 13))
        }
    }
}
