import Testing
import ZooTensor

struct PoolCase: Sendable, CustomTestStringConvertible {
    let name: String
    let input: [Int]
    let options: Pool2DOptions
    let padBefore: [Int]
    /// Padding after as requested (before ceil mode's extra).
    let padAfter: [Int]
    let outputSize: [Int]

    var testDescription: String { name }

    static let all: [PoolCase] = [
        PoolCase(name: "2x2 stride 2", input: [2, 3, 6, 6], options: Pool2DOptions(kernel: 2),
                 padBefore: [0, 0], padAfter: [0, 0], outputSize: [3, 3]),
        PoolCase(name: "3x3 stride 2 pad 1 (ResNet stem)", input: [1, 8, 9, 10], options: Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1)),
                 padBefore: [1, 1], padAfter: [1, 1], outputSize: [5, 5]),
        PoolCase(name: "3x3 stride 2 ceil mode", input: [1, 4, 8, 8], options: Pool2DOptions(kernel: 3, stride: 2, ceilMode: true),
                 padBefore: [0, 0], padAfter: [0, 0], outputSize: [4, 4]),
        PoolCase(name: "3x3 stride 2 pad 1 ceil mode", input: [1, 4, 7, 7],
                 options: Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1), ceilMode: true),
                 padBefore: [1, 1], padAfter: [1, 1], outputSize: [4, 4]),
        PoolCase(name: "3x3 stride 3 pad 1 ceil mode: a last window starting in the padding is dropped", input: [1, 4, 5, 5],
                 options: Pool2DOptions(kernel: 3, stride: 3, padding: .symmetric(1), ceilMode: true, countIncludesPadding: true),
                 padBefore: [1, 1], padAfter: [1, 1], outputSize: [2, 2]),
        PoolCase(name: "3x3 stride 1 TF same, padding not counted (Keras)", input: [1, 5, 6, 6],
                 options: Pool2DOptions(kernel: 3, stride: 1, padding: .same, countIncludesPadding: false),
                 padBefore: [1, 1], padAfter: [1, 1], outputSize: [6, 6]),
        PoolCase(name: "3x3 stride 1 pad 1, padding counted (torchvision Inception)", input: [1, 5, 6, 6],
                 options: Pool2DOptions(kernel: 3, stride: 1, padding: .symmetric(1), countIncludesPadding: true),
                 padBefore: [1, 1], padAfter: [1, 1], outputSize: [6, 6]),
        PoolCase(name: "2x2 stride 2 ceil mode on odd input, padding counted", input: [1, 3, 5, 7],
                 options: Pool2DOptions(kernel: 2, stride: 2, ceilMode: true, countIncludesPadding: true),
                 padBefore: [0, 0], padAfter: [0, 0], outputSize: [3, 4]),
        PoolCase(name: "3x3 stride 2 pad 1 ceil mode, padding counted", input: [1, 2, 8, 6],
                 options: Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1), ceilMode: true, countIncludesPadding: true),
                 padBefore: [1, 1], padAfter: [1, 1], outputSize: [5, 4]),
    ]
}

@Suite("Pooling")
struct PoolingTests {
    @Test("max and average forward match the direct loop", arguments: PoolCase.all)
    func forward(_ c: PoolCase) throws {
        var check = Check()
        let x = try check.tensor(c.input, blocked: true)
        for isMax in [true, false] {
            let y = isMax ? try maxPool2d(x, c.options) : try avgPool2d(x, c.options)
            #expect(y.shape == [c.input[0], c.input[1]] + c.outputSize)
            let expected = Reference.pool(try x.array(), c.input, kernel: c.options.kernel, stride: c.options.stride,
                                          padBefore: c.padBefore, padAfter: c.padAfter, outputSize: c.outputSize,
                                          max: isMax, countPadding: c.options.countIncludesPadding)
            expectClose(try y.array(), expected, tolerance: 1e-5, "\(c.name) \(isMax ? "max" : "average")")
        }
    }

    @Test("gradients match finite differences", arguments: PoolCase.all)
    func gradients(_ c: PoolCase) throws {
        var check = Check()
        // Distinct values keep every window's maximum unique under the perturbation.
        let x = try Tensor(shape: c.input, values: check.distinctValues(c.input.reduce(1, *), gap: 0.1)).blocked()
        try check.gradients([x], step: 0.02, tolerance: 5e-3) { try maxPool2d($0[0], c.options) }
        try check.gradients([x], step: 0.25, tolerance: 2e-3) { try avgPool2d($0[0], c.options) }
    }

    @Test("global pooling reduces each feature map")
    func global() throws {
        var check = Check()
        let x = try check.tensor([2, 5, 3, 4], blocked: true)
        let values = try x.array()
        let means = try globalAvgPool2d(x)
        let maxima = try globalMaxPool2d(x)
        #expect(means.shape == [2, 5])
        let expectedMeans = (0..<10).map { plane in values[plane * 12..<(plane + 1) * 12].reduce(0, +) / 12 }
        let expectedMaxima = (0..<10).map { plane in values[plane * 12..<(plane + 1) * 12].max()! }
        expectClose(try means.array(), expectedMeans, tolerance: 1e-6, "means")
        expectClose(try maxima.array(), expectedMaxima, tolerance: 0, "maxima")
        try check.gradients([x], step: 0.25, tolerance: 2e-3) { try globalAvgPool2d($0[0]) }
        let distinct = try Tensor(shape: [2, 5, 3, 4], values: check.distinctValues(120, gap: 0.1)).blocked()
        try check.gradients([distinct], step: 0.02, tolerance: 5e-3) { try globalMaxPool2d($0[0]) }
    }
}

@Suite("Adaptive pooling")
struct AdaptivePoolingTests {
    @Test("adaptive average pooling follows PyTorch's windows, grows small inputs, and has the right gradient")
    func adaptive() throws {
        var check = Check()
        // 5 rows onto 3: windows [0,2), [1,4), [3,5).
        let x = try check.tensor([1, 2, 5, 4], blocked: true)
        let v = try x.array()
        let y = try adaptiveAvgPool2d(x, outputSize: [3, 2]).array()
        let corner: Float = v[0] + v[1] + v[4] + v[5]
        let expected = corner / 4
        #expect(abs(y[0] - expected) < 1e-6)
        let middleValues: [Float] = (4..<16).filter { ($0 % 4) < 2 }.map { v[$0] }
        let middle = middleValues.reduce(0, +) / 6
        #expect(abs(y[2] - middle) < 1e-6)
        // A 1x1 map repeated onto 7x7, as torchvision VGG does at small inputs.
        let single = try check.tensor([2, 3, 1, 1])
        let grown = try adaptiveAvgPool2d(single, outputSize: [7, 7]).array()
        let s = try single.array()
        #expect(grown.enumerated().allSatisfy { $0.element == s[$0.offset / 49] })
        try check.gradients([x], step: 0.25, tolerance: 1e-3) { try adaptiveAvgPool2d($0[0], outputSize: [3, 2]) }
        try check.gradients([try check.tensor([1, 2, 6, 4])], step: 0.25, tolerance: 1e-3) { try adaptiveAvgPool2d($0[0], outputSize: [3, 2]) }
    }
}
