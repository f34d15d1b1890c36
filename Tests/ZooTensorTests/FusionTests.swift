import Foundation
import Testing
import ZooTensor

/// The fused forms (activation post-ops, batch norm folded into a convolution, batch norm with
/// its ReLU, DenseNet's recomputing layer) must compute what the separate operations compute,
/// values and gradients alike.
@Suite("Fused operations")
struct FusionTests {
    /// The output and the tape's gradients of `sum(f(inputs) * seed)` for every input.
    func valueAndGradients(_ inputs: [Tensor], seed: Tensor, _ f: ([Tensor]) throws -> Tensor) throws -> (output: [Float], gradients: [[Float]]) {
        let tape = GradientTape()
        let watched = inputs.map { tape.watch($0) }
        let output = try f(watched)
        try tape.backward(output, seed: seed)
        return (try output.array(), try watched.map { try #require(tape.gradient(for: $0)).array() })
    }

    func expectSame(_ fused: (output: [Float], gradients: [[Float]]), _ separate: (output: [Float], gradients: [[Float]]),
                    tolerance: Float = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) {
        expectClose(fused.output, separate.output, tolerance: tolerance, "output", sourceLocation: sourceLocation)
        for (index, (a, b)) in zip(fused.gradients, separate.gradients).enumerated() {
            expectClose(a, b, tolerance: tolerance, "gradient of input \(index)", sourceLocation: sourceLocation)
        }
    }

    @Test("a convolution's fused activation equals the separate one, untraced and traced", arguments: [Activation.relu, .relu6])
    func convolutionPostOp(kind: Activation) throws {
        var check = Check()
        let x = try check.tensor([2, 8, 6, 6], in: -4...4, blocked: true)
        let weight = try check.tensor([16, 8, 3, 3]), bias = try check.tensor([16])
        let options = Conv2DOptions(stride: 1, padding: .symmetric(1))
        let fused = try conv2d(x, weight: weight, bias: bias, options: options, activation: kind)
        let separate = try activation(kind, conv2d(x, weight: weight, bias: bias, options: options))
        expectClose(try fused.array(), try separate.array(), tolerance: 1e-5, "untraced output")
        let seed = try check.tensor(separate.shape)
        expectSame(try valueAndGradients([x, weight, bias], seed: seed) { t in
                       try conv2d(t[0], weight: t[1], bias: t[2], options: options, activation: kind)
                   },
                   try valueAndGradients([x, weight, bias], seed: seed) { t in
                       try activation(kind, conv2d(t[0], weight: t[1], bias: t[2], options: options))
                   })
    }

    @Test("a residual added as a post-op, with or without an activation, equals the separate add", arguments: [nil, Activation.relu])
    func residualPostOp(kind: Activation?) throws {
        var check = Check()
        let x = try check.tensor([2, 16, 5, 5], blocked: true), residual = try check.tensor([2, 32, 5, 5], blocked: true)
        let weight = try check.tensor([32, 16, 1, 1]), bias = try check.tensor([32])
        func separate(_ t: [Tensor]) throws -> Tensor {
            let sum = try add(t[3], conv2d(t[0], weight: t[1], bias: t[2]))
            return try kind.map { try activation($0, sum) } ?? sum
        }
        let fused = try conv2d(x, weight: weight, bias: bias, residual: residual, activation: kind)
        expectClose(try fused.array(), try separate([x, weight, bias, residual]).array(), tolerance: 1e-6, "untraced output")
        let seed = try check.tensor(fused.shape)
        expectSame(try valueAndGradients([x, weight, bias, residual], seed: seed) { t in
                       try conv2d(t[0], weight: t[1], bias: t[2], residual: t[3], activation: kind)
                   },
                   try valueAndGradients([x, weight, bias, residual], seed: seed, separate))
        #expect(throws: TensorError.self) { try conv2d(x, weight: weight, residual: x) }
    }

    @Test("the Winograd convolution (3x3, 64 channels and more, 6x6 outputs and larger) agrees with the direct one, values and gradients")
    func winograd() throws {
        var check = Check()
        let x = try check.tensor([2, 64, 12, 12], in: -2...2, blocked: true)
        // 96 output channels take the Winograd kernel; two halves of 48 each are too few and
        // take the direct one.
        let lower = try check.tensor([48, 64, 3, 3], in: -0.1...0.1), upper = try check.tensor([48, 64, 3, 3], in: -0.1...0.1)
        let options = Conv2DOptions(stride: 1, padding: .symmetric(1))
        func winograd(_ t: [Tensor]) throws -> Tensor { try conv2d(t[0], weight: concat([t[1], t[2]], axis: 0), options: options) }
        func direct(_ t: [Tensor]) throws -> Tensor {
            try concat([conv2d(t[0], weight: t[1], options: options), conv2d(t[0], weight: t[2], options: options)])
        }
        expectClose(try winograd([x, lower, upper]).array(), try direct([x, lower, upper]).array(), tolerance: 1e-5, "inference")
        let seed = try check.tensor([2, 96, 12, 12])
        // The weight gradients sum 288 products each (magnitudes about 10): Winograd's rounding
        // differs there by about 2e-5.
        expectSame(try valueAndGradients([x, lower, upper], seed: seed, winograd),
                   try valueAndGradients([x, lower, upper], seed: seed, direct))
    }

    @Test("a batch norm folded into the convolution before it gives the same output", arguments: [true, false])
    func folding(withBias: Bool) throws {
        var check = Check()
        let x = try check.tensor([3, 6, 5, 5], blocked: true)
        let weight = try check.tensor([8, 6, 3, 3]), bias = withBias ? try check.tensor([8]) : nil
        let scale = try check.tensor([8], in: 0.5...1.5), shift = try check.tensor([8])
        let mean = try check.tensor([8]), variance = try check.tensor([8], in: 0.2...2)
        let options = Conv2DOptions(stride: 2, padding: .same)
        let separate = try batchNormInference(conv2d(x, weight: weight, bias: bias, options: options), scale: scale, shift: shift,
                                              mean: mean, variance: variance, epsilon: 1e-3)
        let folded = try foldBatchNorm(weight: weight, bias: bias, scale: scale, shift: shift, mean: mean, variance: variance,
                                       epsilon: 1e-3)
        let fused = try conv2d(x, weight: folded.weight, bias: folded.bias, options: options)
        expectClose(try fused.array(), try separate.array(), tolerance: 1e-5, "output")
        #expect(throws: TensorError.self) {
            try foldBatchNorm(weight: weight, bias: nil, scale: try check.tensor([7]), shift: shift, mean: mean, variance: variance,
                              epsilon: 1e-3)
        }
    }

    @Test("batch norm with its ReLU fused equals batch norm then ReLU, in training and inference")
    func normReLU() throws {
        var check = Check()
        let x = try check.tensor([4, 16, 3, 3], in: -2...2, blocked: true)
        let scale = try check.tensor([16], in: 0.5...1.5), shift = try check.tensor([16])
        let mean = try check.tensor([16]), variance = try check.tensor([16], in: 0.5...2)
        let seed = try check.tensor(x.shape)
        expectSame(try valueAndGradients([x, scale, shift], seed: seed) { t in
                       try batchNormTraining(t[0], scale: t[1], shift: t[2], epsilon: 1e-3, relu: true).output
                   },
                   try valueAndGradients([x, scale, shift], seed: seed) { t in
                       try relu(batchNormTraining(t[0], scale: t[1], shift: t[2], epsilon: 1e-3).output)
                   })
        let fused = try batchNormInference(x, scale: scale, shift: shift, mean: mean, variance: variance, epsilon: 1e-3, relu: true)
        let separate = try relu(batchNormInference(x, scale: scale, shift: shift, mean: mean, variance: variance, epsilon: 1e-3))
        expectClose(try fused.array(), try separate.array(), tolerance: 1e-6, "inference output")
    }

    @Test("DenseNet's recomputing layer equals concatenation, batch norm, ReLU and convolution", arguments: [false, true])
    func denseConnection(fixedStatistics: Bool) throws {
        var check = Check()
        let pieces = [try check.tensor([2, 16, 4, 4], blocked: true), try check.tensor([2, 8, 4, 4], blocked: true),
                      try check.tensor([2, 8, 4, 4], blocked: true)]
        let scale = try check.tensor([32], in: 0.5...1.5), shift = try check.tensor([32])
        let statistics = fixedStatistics ? (mean: try check.tensor([32]), variance: try check.tensor([32], in: 0.5...2)) : nil
        let weight = try check.tensor([16, 32, 1, 1])
        let options = Conv2DOptions()
        let seed = try check.tensor([2, 16, 4, 4])
        // The input as the network has it: the concatenation, computed from the pieces on the tape.
        let recomputing = try valueAndGradients(pieces + [scale, shift, weight], seed: seed) { t in
            try concatNormReLUConv(try concat(Array(t[0..<3])), pieces: Array(t[0..<3]), scale: t[3], shift: t[4],
                                   statistics: statistics, epsilon: 1e-3, weight: t[5], options: options).output
        }
        let separate = try valueAndGradients(pieces + [scale, shift, weight], seed: seed) { t in
            let input = try concat(Array(t[0..<3]))
            let normalized = try statistics.map {
                try batchNormInference(input, scale: t[3], shift: t[4], mean: $0.mean, variance: $0.variance, epsilon: 1e-3)
            } ?? batchNormTraining(input, scale: t[3], shift: t[4], epsilon: 1e-3).output
            return try conv2d(relu(normalized), weight: t[5], options: options)
        }
        expectSame(recomputing, separate)

        let (_, batchMean, batchVariance) = try concatNormReLUConv(
            try concat(pieces), pieces: pieces, scale: scale, shift: shift, statistics: statistics, epsilon: 1e-3, weight: weight,
            options: options)
        #expect((batchMean == nil) == fixedStatistics && (batchVariance == nil) == fixedStatistics)
        #expect(throws: TensorError.self) {
            try concatNormReLUConv(pieces[0], pieces: pieces, scale: scale, shift: shift, statistics: statistics, epsilon: 1e-3,
                                   weight: weight, options: options)
        }
    }
}

@Suite("Buffer segments")
struct SegmentArenaTests {
    @Test("freed blocks merge and serve other sizes, so varied sizes do not pile up")
    func reuse() {
        var arena = SegmentArena()
        defer { arena.releaseFreeSegments() }
        let megabyte = 1 << 20
        // A DenseNet block's pattern: a concatenation one step larger per layer, each freed when
        // the next is made. A pool keyed by size would keep every one of them.
        var previous: UInt?
        for layer in 0..<40 {
            let block = arena.take(2 * megabyte + layer * 150_000)
            if let previous { _ = arena.give(previous) }
            previous = block.address
        }
        _ = arena.give(previous!)
        #expect(arena.freeBytes == arena.reservedBytes, "everything is free again")
        #expect(arena.reservedBytes <= 40 * megabyte, "held \(arena.reservedBytes >> 20) MiB for blocks of at most 8 MiB")
    }

    @Test("a block is split off a segment, and freed neighbours merge back into it")
    func splitAndMerge() {
        var arena = SegmentArena()
        defer { arena.releaseFreeSegments() }
        let megabyte = 1 << 20
        let first = arena.take(3 * megabyte), second = arena.take(3 * megabyte)
        let segment = arena.reservedBytes
        #expect(second.address == first.address + UInt(first.size), "the second block is cut from the rest of the first's segment")
        #expect(arena.freeBytes == segment - first.size - second.size)
        #expect(arena.give(second.address) == second.size)
        _ = arena.give(first.address)
        let whole = arena.take(segment)
        #expect(whole.address == first.address && arena.reservedBytes == segment, "the merged segment serves a request of its full size")
        _ = arena.give(whole.address)
    }

    #if os(Linux)
    @Test("segments are left out of forked children, so the HDF5 sandbox's fork does not copy their page tables")
    func segmentsAreNotForked() throws {
        var arena = SegmentArena()
        defer { arena.releaseFreeSegments() }
        let block = arena.take(3 << 20)
        // /proc/self/smaps: a mapping's header line "start-end ...", later its "VmFlags:" line,
        // where "dc" is MADV_DONTFORK's flag.
        // Read to the end: /proc files report a size of 0.
        let smaps = String(decoding: try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data(),
                           as: UTF8.self)
        var inBlock = false, flags: [Substring]?
        for line in smaps.split(separator: "\n") {
            if let range = line.split(separator: " ").first, range.contains("-"), !line.hasPrefix("VmFlags") {
                let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inBlock = bounds.count == 2 && bounds[0] <= block.address && block.address < bounds[1]
            } else if inBlock, line.hasPrefix("VmFlags:") {
                flags = line.split(separator: " ").dropFirst().map { $0 }
                break
            }
        }
        let found = try #require(flags, "no mapping in /proc/self/smaps holds the block at \(String(block.address, radix: 16))")
        #expect(found.contains("dc"), "VmFlags \(found.joined(separator: " ")) lack dc (MADV_DONTFORK)")
        _ = arena.give(block.address)
    }
    #endif
}
