import Testing
import ZooTensor

/// Convolution settings covering each kind of layer the zoo's models use.
struct ConvCase: Sendable, CustomTestStringConvertible {
    let name: String
    let input: [Int]
    let weight: [Int]
    let options: Conv2DOptions
    let bias: Bool
    /// Expected padding (before, after) per axis, computed by hand for the case.
    let padBefore: [Int]
    let padAfter: [Int]

    var testDescription: String { name }

    static let all: [ConvCase] = [
        ConvCase(name: "3x3 stride 1 symmetric, bias", input: [2, 3, 7, 6], weight: [5, 3, 3, 3],
                 options: Conv2DOptions(stride: 1, padding: .symmetric(1)), bias: true, padBefore: [1, 1], padAfter: [1, 1]),
        ConvCase(name: "1x1, 16 channels, no bias", input: [2, 16, 5, 5], weight: [8, 16, 1, 1],
                 options: Conv2DOptions(), bias: false, padBefore: [0, 0], padAfter: [0, 0]),
        ConvCase(name: "3x3 stride 2 TF same on even input (asymmetric)", input: [2, 4, 8, 8], weight: [6, 4, 3, 3],
                 options: Conv2DOptions(stride: 2, padding: .same), bias: true, padBefore: [0, 0], padAfter: [1, 1]),
        ConvCase(name: "3x3 stride 2 TF same on odd input", input: [1, 4, 7, 9], weight: [6, 4, 3, 3],
                 options: Conv2DOptions(stride: 2, padding: .same), bias: false, padBefore: [1, 1], padAfter: [1, 1]),
        ConvCase(name: "7x7 stride 2 explicit 3", input: [1, 3, 12, 12], weight: [8, 3, 7, 7],
                 options: Conv2DOptions(stride: 2, padding: .symmetric(3)), bias: false, padBefore: [3, 3], padAfter: [3, 3]),
        ConvCase(name: "1x7 and 7x1 style rectangular kernel", input: [1, 8, 9, 9], weight: [8, 8, 1, 7],
                 options: Conv2DOptions(padding: .symmetric(height: 0, width: 3)), bias: false, padBefore: [0, 3], padAfter: [0, 3]),
        ConvCase(name: "explicit asymmetric padding", input: [1, 2, 6, 5], weight: [3, 2, 3, 3],
                 options: Conv2DOptions(stride: [1, 2], padding: .explicit(top: 0, bottom: 2, left: 1, right: 0)), bias: true,
                 padBefore: [0, 1], padAfter: [2, 0]),
        ConvCase(name: "dilation 2", input: [1, 4, 9, 9], weight: [4, 4, 3, 3],
                 options: Conv2DOptions(stride: [1, 1], padding: .symmetric(2), dilation: [2, 2]), bias: false, padBefore: [2, 2], padAfter: [2, 2]),
        ConvCase(name: "groups 2", input: [2, 8, 6, 6], weight: [6, 4, 3, 3],
                 options: Conv2DOptions(stride: 1, padding: .symmetric(1), groups: 2), bias: true, padBefore: [1, 1], padAfter: [1, 1]),
        ConvCase(name: "depthwise 3x3 stride 2 same", input: [2, 16, 8, 8], weight: [16, 1, 3, 3],
                 options: Conv2DOptions(stride: 2, padding: .same, groups: 16), bias: false, padBefore: [0, 0], padAfter: [1, 1]),
        ConvCase(name: "depthwise 3x3, 12 channels (padded block)", input: [1, 12, 5, 5], weight: [12, 1, 3, 3],
                 options: Conv2DOptions(stride: 1, padding: .symmetric(1), groups: 12), bias: true, padBefore: [1, 1], padAfter: [1, 1]),
    ]
}

@Suite("Convolution")
struct ConvolutionTests {
    @Test("forward matches the direct loop", arguments: ConvCase.all)
    func forward(_ c: ConvCase) throws {
        var check = Check()
        for blocked in [false, true] {
            let x = try check.tensor(c.input, blocked: blocked)
            let w = try check.tensor(c.weight)
            let b = c.bias ? try check.tensor([c.weight[0]]) : nil
            let y = try conv2d(x, weight: w, bias: b, options: c.options)
            let expected = Reference.conv2d(try x.array(), c.input, try w.array(), c.weight, bias: try b?.array(),
                                            stride: c.options.stride, padBefore: c.padBefore, padAfter: c.padAfter,
                                            dilation: c.options.dilation, groups: c.options.groups)
            #expect(y.shape == expected.shape)
            expectClose(try y.array(), expected.values, tolerance: 1e-5, "\(c.name), blocked input \(blocked)")
        }
    }

    @Test("gradients match finite differences", arguments: ConvCase.all)
    func gradients(_ c: ConvCase) throws {
        var check = Check()
        var inputs = [try check.tensor(c.input, blocked: true), try check.tensor(c.weight)]
        if c.bias { inputs.append(try check.tensor([c.weight[0]])) }
        // The convolution is linear in each input, so a large step is exact up to rounding.
        try check.gradients(inputs, step: 0.25, tolerance: 2e-3) { t in
            try conv2d(t[0], weight: t[1], bias: t.count > 2 ? t[2] : nil, options: c.options)
        }
    }

    @Test("the output is blocked and stays blocked through the next layer")
    func blockedLayout() throws {
        var check = Check()
        let x = try check.tensor([2, 3, 16, 16])
        let y = try conv2d(x, weight: try check.tensor([16, 3, 3, 3]), options: Conv2DOptions(padding: .symmetric(1)))
        #expect(y.layout.isBlocked)
        let z = try relu(try conv2d(y, weight: try check.tensor([16, 16, 3, 3]), options: Conv2DOptions(padding: .symmetric(1))))
        #expect(z.layout.description == "nChw8c" || z.layout.description == "nChw16c")
    }

    @Test("a frozen weight gets no gradient and a trainable one does")
    func frozenWeights() throws {
        var check = Check()
        let frozen = Parameter(try check.tensor([4, 3, 3, 3]), trainable: false)
        let trainable = Parameter(try check.tensor([2, 4, 1, 1]))
        let tape = GradientTape()
        let x = try check.tensor([1, 3, 6, 6])
        let hidden = try conv2d(x, weight: tape.watch(frozen))
        // Nothing upstream of the first trainable layer is recorded.
        #expect(tape.recordedOperationCount == 0)
        #expect(!hidden.isTraced)
        let y = try conv2d(hidden, weight: tape.watch(trainable))
        #expect(tape.recordedOperationCount == 1)
        try tape.backward(try globalAvgPool2d(y), seed: Tensor.filled([1, 2], 1))
        #expect(frozen.gradient == nil)
        #expect(trainable.gradient?.shape == [2, 4, 1, 1])
    }
}
