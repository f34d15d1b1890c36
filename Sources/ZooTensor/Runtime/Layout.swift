import CDNNL

/// The type of a tensor's elements.
///
/// Parameters, optimizer state, losses and every array that goes in or out are `float32`.
/// `bfloat16` (f32's 8-bit exponent with 8 bits of mantissa, about 3 significant digits) is for
/// activations and their gradients in mixed precision: oneDNN runs convolutions and matrix
/// products on it with the CPU's AVX512_BF16 or AMX instructions, reading half the bytes, while
/// it keeps batch-norm statistics and accumulations in f32.
///
/// `int8` and `uint8` hold quantized activations between int8 convolutions (see
/// ``Tensor/quantization``): each value is an integer count of a per-tensor step; `uint8` for
/// values that are never negative (after a ReLU), which gains one bit.
public enum ElementType: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    case float32 = "f32"
    case bfloat16 = "bf16"
    case int8 = "s8"
    case uint8 = "u8"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32: return 4
        case .bfloat16: return 2
        case .int8, .uint8: return 1
        }
    }

    /// Whether elements are quantized integers rather than floating point.
    public var isQuantized: Bool { self == .int8 || self == .uint8 }

    var dnnl: dnnl_data_type_t {
        switch self {
        case .float32: return dnnl_f32
        case .bfloat16: return dnnl_bf16
        case .int8: return dnnl_s8
        case .uint8: return dnnl_u8
        }
    }

    init?(_ type: dnnl_data_type_t) {
        switch type {
        case dnnl_f32: self = .float32
        case dnnl_bf16: self = .bfloat16
        case dnnl_s8: self = .int8
        case dnnl_u8: self = .uint8
        default: return nil
        }
    }

    public var description: String { rawValue }
}

/// How a tensor's elements lie in memory: a oneDNN memory descriptor.
///
/// Logical dimensions are always in oneDNN's order (N, C, H, W for activations; O, I, H, W for
/// convolution weights), whatever the physical order. Activations inside a network live in the
/// blocked layout oneDNN picks for its fastest kernels (`nChw8c` on AVX2); host arrays come in
/// and go out in plain layouts.
public struct Layout: @unchecked Sendable, CustomStringConvertible {
    var desc: dnnl_memory_desc_t

    init(_ desc: dnnl_memory_desc_t) { self.desc = desc }

    /// A layout with the given format tag (`dnnl_abcd` = row-major, `dnnl_acdb` = NHWC,
    /// `dnnl_aBcd8b` = nChw8c, `dnnl_format_tag_any` = let the primitive choose).
    static func tagged(_ shape: [Int], _ tag: dnnl_format_tag_t, _ type: ElementType = .float32) -> Layout {
        var desc = dnnl_memory_desc_t()
        let dims = shape.isEmpty ? [Int64(1)] : shape.map { Int64($0) }
        let status = dims.withUnsafeBufferPointer {
            dnnl_memory_desc_init_by_tag(&desc, Int32(dims.count), $0.baseAddress, type.dnnl, tag)
        }
        precondition(status == dnnl_success, "oneDNN rejected shape \(shape) with format tag \(tag.rawValue)")
        return Layout(desc)
    }

    /// Row-major (C order): `abcd`, NCHW for activations, OIHW for weights.
    static func rowMajor(_ shape: [Int], _ type: ElementType = .float32) -> Layout {
        tagged(shape, plainTag(rank: max(1, shape.count)), type)
    }

    /// Channels-last for a 4-D tensor (NHWC).
    static func nhwc(_ shape: [Int], _ type: ElementType = .float32) -> Layout { tagged(shape, dnnl_acdb, type) }

    /// The layout 4-D activations use inside a network, the one oneDNN's convolutions choose
    /// for `type` on this CPU: for f32 channels in blocks of ``activationBlockSize``
    /// (`nChw8c` with AVX2, `nChw16c` with AVX-512); for bf16 channels-last where oneDNN's
    /// brgemm kernels run it (AMX and AVX512_BF16), which they choose over its older kernels on
    /// `nChw16c` (measured, ResNet50 at 96x96, batch 32, AMX: 1x1 convolutions
    /// `jit_bf16_1x1:avx512_core_bf16` on `nChw16c` took 4x the time of f32, while the first layer,
    /// left to choose, ran `jit:avx512_core_amx_bf16` on NHWC).
    /// Quantized activations are channels-last, the layout of oneDNN's int8 kernels (brgemm and
    /// `jit_int8` on AVX512_VNNI and AMX).
    static func blocked(_ shape: [Int], _ type: ElementType = .float32) -> Layout {
        switch type {
        case .float32: return tagged(shape, activationBlockSize == 16 ? dnnl_aBcd16b : dnnl_aBcd8b, type)
        case .bfloat16: return tagged(shape, bfloat16ActivationTag, type)
        case .int8, .uint8: return tagged(shape, dnnl_acdb, type)
        }
    }

    /// The format oneDNN's convolutions choose for bf16 activations on this CPU, asked once as
    /// for ``activationBlockSize``: `acdb` (NHWC) or a channel-blocked one.
    static let bfloat16ActivationTag: dnnl_format_tag_t = {
        guard let chosen = probeConvolutionOutput(.bfloat16) else { return dnnl_aBcd16b }
        return [dnnl_acdb, dnnl_aBcd16b, dnnl_aBcd8b].first { chosen == Layout.tagged(chosen.dims, $0, .bfloat16) } ?? dnnl_aBcd16b
    }()

    /// The output layout oneDNN chooses for a typical 3x3 convolution (64 -> 64 channels at
    /// 56x56, batch 32) of `type` with every layout left open.
    private static func probeConvolutionOutput(_ type: ElementType) -> Layout? {
        var desc = dnnl_convolution_desc_t()
        var src = any([32, 64, 56, 56], type).desc, wei = any([64, 64, 3, 3], type).desc, dst = any([32, 64, 56, 56], type).desc
        let one: [Int64] = [1, 1], none: [Int64] = [0, 0]
        guard dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &src, &wei, nil,
                                                         &dst, one, none, one, one) == dnnl_success,
              let primitive = try? makePrimitive("probe", desc) else { return nil }
        return primitive.layout(dnnl_query_dst_md)
    }

    /// The channel block oneDNN's convolutions choose on this CPU, asked once of oneDNN for a
    /// typical 3x3 convolution with every layout left open. Pooling and batch norm have fast
    /// kernels for the same block (and fall back to slow ones for a block the CPU lacks).
    static let activationBlockSize: Int = {
        guard let chosen = probeConvolutionOutput(.float32), chosen.desc.format_kind == dnnl_blocked,
              chosen.desc.format_desc.blocking.inner_nblks == 1 else { return 8 }
        return Int(chosen.desc.format_desc.blocking.inner_blks.0)
    }()

    /// "Any layout": lets a primitive choose the fastest one.
    static func any(_ shape: [Int], _ type: ElementType = .float32) -> Layout { tagged(shape, dnnl_format_tag_any, type) }

    /// The element type.
    public var elementType: ElementType {
        guard let type = ElementType(desc.data_type) else { preconditionFailure("zoo: a layout of oneDNN type \(desc.data_type.rawValue)") }
        return type
    }

    /// The same format with elements of `type`.
    func with(_ type: ElementType) -> Layout {
        var changed = desc
        changed.data_type = type.dnnl
        // Offsets and strides count elements, so only the type changes; oneDNN derives sizes from it.
        return Layout(changed)
    }

    static func plainTag(rank: Int) -> dnnl_format_tag_t {
        switch rank {
        case 1: return dnnl_a
        case 2: return dnnl_ab
        case 3: return dnnl_abc
        case 4: return dnnl_abcd
        case 5: return dnnl_abcde
        default: return dnnl_abcdef
        }
    }

    /// The logical dimensions.
    var dims: [Int] {
        withUnsafeBytes(of: desc.dims) { raw in
            Array(raw.bindMemory(to: Int64.self).prefix(Int(desc.ndims)).map { Int($0) })
        }
    }

    /// Bytes a buffer in this layout needs, including any channel padding of blocked formats.
    var byteCount: Int { withUnsafePointer(to: desc) { dnnl_memory_desc_get_size($0) } }

    /// Whether this is exactly the row-major layout of its dimensions (no padding, no blocking).
    var isRowMajor: Bool { self == Layout.rowMajor(dims, elementType) }

    /// Whether the channel dimension is split into blocks (`nChw8c` and the like).
    public var isBlocked: Bool {
        desc.format_kind == dnnl_blocked && desc.format_desc.blocking.inner_nblks > 0
    }

    /// The channel padding of a blocked layout with a single channel block (`nChw16c` with 40
    /// channels pads 8 per 16-channel block): the block size and the channel count, or nil when
    /// the layout has no padding or pads in a way other than that.
    var channelPadding: (block: Int, channels: Int)? {
        guard desc.format_kind == dnnl_blocked, desc.ndims >= 2, desc.offset0 == 0 else { return nil }
        let blocking = desc.format_desc.blocking
        guard blocking.inner_nblks == 1, blocking.inner_idxs.0 == 1 else { return nil }
        let padded = withUnsafeBytes(of: desc.padded_dims) { Array($0.bindMemory(to: Int64.self).prefix(Int(desc.ndims)).map { Int($0) }) }
        let dims = self.dims
        guard padded[1] > dims[1], (0..<dims.count).allSatisfy({ $0 == 1 || padded[$0] == dims[$0] }) else { return nil }
        return (Int(blocking.inner_blks.0), dims[1])
    }

    /// All physical elements of a channel-padded layout as one dense vector, for element-wise
    /// primitives (see ``Buffer/zeroChannelPadding()``); nil for other layouts.
    var denseVector: Layout? {
        channelPadding == nil ? nil : .rowMajor([byteCount / elementType.byteSize], elementType)
    }

    /// A short name for the format: `abcd`, `acdb`, `aBcd8b`, or `blocked` for others.
    public var description: String {
        let rank = dims.count
        let candidates: [(dnnl_format_tag_t, String)] = rank == 4
            ? [(dnnl_abcd, "nchw"), (dnnl_acdb, "nhwc"), (dnnl_aBcd8b, "nChw8c"), (dnnl_aBcd16b, "nChw16c"),
               (dnnl_ABcd16b16a, "OIhw16i16o"),
               (dnnl_ABcd8b8a, "OIhw8i8o"), (dnnl_Abcd8a, "Ohwi8o")]
            : [(Layout.plainTag(rank: max(1, rank)), "row-major")]
        let suffix = elementType == .float32 ? "" : " \(elementType)"
        for (tag, name) in candidates where self == Layout.tagged(dims, tag, elementType) { return name + suffix }
        return "blocked" + suffix
    }

    /// A hashable summary of the descriptor, used to key caches of primitives and reorders.
    var key: LayoutKey {
        var words: [Int64] = [Int64(desc.ndims), Int64(desc.data_type.rawValue), Int64(desc.format_kind.rawValue), desc.offset0]
        let n = Int(desc.ndims)
        withUnsafeBytes(of: desc.dims) { words += $0.bindMemory(to: Int64.self).prefix(n) }
        withUnsafeBytes(of: desc.padded_dims) { words += $0.bindMemory(to: Int64.self).prefix(n) }
        withUnsafeBytes(of: desc.padded_offsets) { words += $0.bindMemory(to: Int64.self).prefix(n) }
        if desc.format_kind == dnnl_blocked {
            let blocking = desc.format_desc.blocking
            withUnsafeBytes(of: blocking.strides) { words += $0.bindMemory(to: Int64.self).prefix(n) }
            let blocks = Int(blocking.inner_nblks)
            words.append(Int64(blocks))
            withUnsafeBytes(of: blocking.inner_blks) { words += $0.bindMemory(to: Int64.self).prefix(blocks) }
            withUnsafeBytes(of: blocking.inner_idxs) { words += $0.bindMemory(to: Int64.self).prefix(blocks) }
        } else {
            // Opaque formats (Winograd weights) are told apart by their whole description.
            withUnsafeBytes(of: desc.format_desc) { bytes in
                words += stride(from: 0, to: bytes.count - 7, by: 8).map { bytes.loadUnaligned(fromByteOffset: $0, as: Int64.self) }
            }
        }
        words.append(Int64(desc.extra.flags))
        return LayoutKey(words: words)
    }

    static func == (lhs: Layout, rhs: Layout) -> Bool {
        withUnsafePointer(to: lhs.desc) { l in withUnsafePointer(to: rhs.desc) { r in dnnl_memory_desc_equal(l, r) != 0 } }
    }

    static func != (lhs: Layout, rhs: Layout) -> Bool { !(lhs == rhs) }
}

/// A hashable identity of a ``Layout``.
struct LayoutKey: Hashable, Sendable {
    var words: [Int64]
}

extension Buffer {
    /// Sets the padded channels of a channel-padded blocked buffer to zero, which oneDNN's
    /// primitives expect there, after an element-wise function ran over them; does nothing for
    /// other layouts. Touches only the padded part of the last channel block.
    func zeroChannelPadding() {
        guard let (block, channels) = layout.channelPadding else { return }
        let desc = layout.desc
        let dims = layout.dims
        let strides = withUnsafeBytes(of: desc.format_desc.blocking.strides) {
            Array($0.bindMemory(to: Int64.self).prefix(dims.count).map { Int($0) })
        }
        let first = channels % block, count = block - first
        // Zero is all-zero bits in every element type, so this works in elements of any size.
        let size = layout.elementType.byteSize
        let base = storage.pointer + ((channels / block) * strides[1] + first) * size
        // Every position of the other dimensions, odometer style.
        let others = (0..<dims.count).filter { $0 != 1 }
        var index = [Int](repeating: 0, count: dims.count)
        while true {
            let offset = others.reduce(0) { $0 + index[$1] * strides[$1] }
            (base + offset * size).initializeMemory(as: UInt8.self, repeating: 0, count: count * size)
            var axis = others.count - 1
            while axis >= 0 {
                index[others[axis]] += 1
                if index[others[axis]] < dims[others[axis]] { break }
                index[others[axis]] = 0
                axis -= 1
            }
            if axis < 0 { return }
        }
    }
}
