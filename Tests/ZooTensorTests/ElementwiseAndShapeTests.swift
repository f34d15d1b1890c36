import Testing
import ZooTensor

@Suite("Element-wise and shape operations")
struct ElementwiseAndShapeTests {
    @Test("relu and relu6 forward and backward")
    func activations() throws {
        var check = Check()
        // Values at least 0.05 from the kinks at 0 and 6.
        let values = check.distinctValues(2 * 5 * 4 * 4, gap: 0.1, offset: 3.025)
        let x = try Tensor(shape: [2, 5, 4, 4], values: values).blocked()
        expectClose(try relu(x).array(), values.map { max($0, 0) }, tolerance: 0, "relu")
        expectClose(try relu6(x).array(), values.map { min(max($0, 0), 6) }, tolerance: 0, "relu6")
        try check.gradients([x], step: 0.01, tolerance: 2e-3) { try relu($0[0]) }
        try check.gradients([x], step: 0.01, tolerance: 2e-3) { try relu6($0[0]) }
        let flat = try Tensor(shape: [4, 7], values: check.distinctValues(28, gap: 0.1, offset: 0.025))
        try check.gradients([flat], step: 0.01, tolerance: 2e-3) { try relu($0[0]) }
    }

    @Test("add, also across layouts, and scale")
    func addAndScale() throws {
        var check = Check()
        let a = try check.tensor([2, 6, 3, 3], blocked: true), b = try check.tensor([2, 6, 3, 3])
        expectClose(try add(a, b).array(), zip(try a.array(), try b.array()).map(+), tolerance: 1e-7, "add")
        try check.gradients([a, b], step: 0.25, tolerance: 1e-3) { try add($0[0], $0[1]) }
        expectClose(try scale(a, by: -2.5).array(), try a.array().map { $0 * -2.5 }, tolerance: 1e-7, "scale")
        try check.gradients([a], step: 0.25, tolerance: 1e-3) { try scale($0[0], by: 3) }
        // The same tensor used twice accumulates both gradients.
        try check.gradients([a], step: 0.25, tolerance: 1e-3) { try add($0[0], scale($0[0], by: 3)) }
    }

    @Test("channel concat of blocked and unaligned inputs, and its gradient")
    func concatenation() throws {
        var check = Check()
        let parts = [try check.tensor([2, 8, 3, 3], blocked: true), try check.tensor([2, 16, 3, 3], blocked: true),
                     try check.tensor([2, 5, 3, 3])]
        let y = try concat(parts)
        #expect(y.shape == [2, 29, 3, 3])
        let arrays = try parts.map { try $0.array() }
        var expected: [Float] = []
        for b in 0..<2 {
            for (part, channels) in zip(arrays, [8, 16, 5]) {
                expected += part[(b * channels * 9)..<((b + 1) * channels * 9)]
            }
        }
        expectClose(try y.array(), expected, tolerance: 0, "concat")
        try check.gradients(parts, step: 0.25, tolerance: 1e-3) { try concat($0) }
        let rows = [try check.tensor([3, 4]), try check.tensor([3, 2])]
        try check.gradients(rows, step: 0.25, tolerance: 1e-3) { try concat($0, axis: 1) }
    }

    @Test("flatten in channel-major order, reshape, zero padding")
    func shapes() throws {
        var check = Check()
        let x = try check.tensor([2, 3, 2, 2], blocked: true)
        let flat = try flatten(x)
        #expect(flat.shape == [2, 12])
        #expect(try flat.array() == x.array())
        try check.gradients([x], step: 0.25, tolerance: 1e-3) { try flatten($0[0]) }
        try check.gradients([x], step: 0.25, tolerance: 1e-3) { try reshape($0[0], [4, 6]) }

        let padded = try zeroPad2d(x, top: 0, bottom: 1, left: 2, right: 1)
        #expect(padded.shape == [2, 3, 3, 5])
        let p = try padded.array(), v = try x.array()
        #expect(p[0] == 0 && p[1] == 0 && p[2] == v[0] && p[3] == v[1] && p[4] == 0)
        #expect(p[5 + 2] == v[2] && p[10..<15].allSatisfy { $0 == 0 })
        try check.gradients([x], step: 0.25, tolerance: 1e-3) { try zeroPad2d($0[0], top: 1, bottom: 0, left: 0, right: 2) }
    }

    @Test("NHWC arrays come in and go out")
    func nhwc() throws {
        let values = (0..<24).map(Float.init)
        let x = try Tensor(nhwc: values, shape: [1, 2, 3, 4])
        #expect(x.shape == [1, 4, 2, 3])
        #expect(x.layout.isBlocked)
        #expect(try x.nhwcArray() == values)
        // NCHW element (c, h, w) is NHWC element (h, w, c).
        #expect(try x.array()[1 * 6 + 0 * 3 + 2] == values[(0 * 3 + 2) * 4 + 1])
    }

    @Test("dropout zeroes about `rate` of the elements, rescales the rest, and repeats with a seed")
    func dropoutMask() throws {
        let x = Tensor.filled([4, 8, 16, 16], 1)
        var generator = SeededGenerator(seed: 1)
        let values = try dropout(x, rate: 0.25, generator: &generator).array()
        let zeros = values.filter { $0 == 0 }.count
        #expect(abs(Double(zeros) / Double(values.count) - 0.25) < 0.02)
        #expect(values.allSatisfy { $0 == 0 || abs($0 - 4.0 / 3.0) < 1e-6 })
        var again = SeededGenerator(seed: 1)
        #expect(try dropout(x, rate: 0.25, generator: &again).array() == values)
        var check = Check()
        let input = try check.tensor([2, 5, 3, 3], blocked: true)
        try check.gradients([input], step: 0.25, tolerance: 1e-3) { t in
            var fixed = SeededGenerator(seed: 9)
            return try dropout(t[0], rate: 0.5, generator: &fixed)
        }
    }

    @Test("dense matches a matrix product; gradients match finite differences")
    func denseLayer() throws {
        var check = Check()
        let x = try check.tensor([3, 5]), w = try check.tensor([4, 5]), b = try check.tensor([4])
        let y = try dense(x, weight: w, bias: b)
        let (xv, wv, bv) = (try x.array(), try w.array(), try b.array())
        var expected: [Float] = []
        for n in 0..<3 {
            for o in 0..<4 {
                var sum = bv[o]
                for i in 0..<5 { sum += xv[n * 5 + i] * wv[o * 5 + i] }
                expected.append(sum)
            }
        }
        expectClose(try y.array(), expected, tolerance: 1e-6, "dense")
        try check.gradients([x, w, b], step: 0.25, tolerance: 1e-3) { try dense($0[0], weight: $0[1], bias: $0[2]) }
        try check.gradients([x, w], step: 0.25, tolerance: 1e-3) { try dense($0[0], weight: $0[1]) }
    }
}

@Suite("Image batches")
struct ImageBatchTests {
    @Test("images written into a batch are stored channels-last and read back as NHWC")
    func channelsLastWriter() throws {
        let values = (0..<(2 * 5 * 4 * 3)).map(Float.init)
        let batch = try Tensor.imageBatch(count: 2, height: 5, width: 4) { writer in
            for image in 0..<2 {
                values[image * 60..<(image + 1) * 60].withUnsafeBufferPointer { writer.write(image: image, nhwc: $0) }
            }
        }
        #expect(batch.layout.description == "nhwc")
        #expect(try batch.nhwcArray() == values)
        #expect(try Tensor(nhwc: values, shape: [2, 5, 4, 3]).array() == batch.array())
    }
}

@Suite("Samples of a batch")
struct SampleTests {
    @Test("a batch splits into samples and stacks back, in any order, for blocked and row-major tensors")
    func roundTrip() throws {
        var check = Check()
        for shape in [[3, 20, 4, 5], [4, 7]] {
            let batch = try check.tensor(shape, blocked: shape.count == 4)
            let samples = try batch.samples()
            #expect(samples.count == shape[0])
            let restacked = try Tensor(stacking: samples)
            #expect(try restacked.array() == batch.array())
            let reversed = try Tensor(stacking: samples.reversed()).array()
            let size = shape.dropFirst().reduce(1, *)
            #expect(Array(reversed[0..<size]) == Array(try batch.array()[(shape[0] - 1) * size..<shape[0] * size]))
        }
    }
}
