import CDNNL
import Foundation

/// Times zoo's convolution operations against the bare oneDNN primitives they run on, in the
/// same process and interleaved, so the ratio shows what zoo's own layer (layouts, caches,
/// buffers, weight reorders) costs.
public enum OperationBenchmark {
    /// A convolution to measure.
    public struct Case: Sendable {
        public var name: String
        public var input: [Int]
        public var weight: [Int]
        public var options: Conv2DOptions

        public init(name: String, input: [Int], weight: [Int], options: Conv2DOptions) {
            self.name = name
            self.input = input
            self.weight = weight
            self.options = options
        }

        /// The cases of ENGINE_NOTES.md, batch 32: a ResNet 3x3, a bottleneck 1x1 and a
        /// MobileNetV2 depthwise convolution.
        public static let standard: [Case] = [
            Case(name: "3x3 64->64 56x56", input: [32, 64, 56, 56], weight: [64, 64, 3, 3], options: Conv2DOptions(padding: .symmetric(1))),
            Case(name: "1x1 256->64 56x56", input: [32, 256, 56, 56], weight: [64, 256, 1, 1], options: Conv2DOptions()),
            Case(name: "dw3x3 144 48x48", input: [32, 144, 48, 48], weight: [144, 1, 3, 3],
                 options: Conv2DOptions(padding: .symmetric(1), groups: 144)),
        ]
    }

    /// The three passes of a training step.
    public enum Pass: String, Sendable, CaseIterable, Codable {
        case forward
        case backwardData = "backward_data"
        case backwardWeights = "backward_weights"
    }

    /// One measured case and pass.
    public struct Result: Sendable, Codable {
        public var caseName: String
        public var pass: Pass
        public var zooGFlops: Double
        public var oneDNNGFlops: Double
        /// zoo's speed over the bare primitive's.
        public var ratio: Double

        enum CodingKeys: String, CodingKey {
            case caseName = "case", pass, zooGFlops = "zoo_gflops", oneDNNGFlops = "onednn_gflops", ratio
        }
    }

    /// Measures every case and pass `rounds` times (each round runs zoo and oneDNN back to
    /// back) and reports the median time of each.
    public static func run(_ cases: [Case] = Case.standard, rounds: Int = 7) throws -> [Result] {
        var results: [Result] = []
        for benchmarkCase in cases {
            let geometry = try ConvolutionGeometry(input: benchmarkCase.input, weight: benchmarkCase.weight, bias: nil,
                                                   options: benchmarkCase.options)
            let flops = 2.0 * Double(geometry.outputShape.reduce(1, *)) * Double(benchmarkCase.weight.dropFirst().reduce(1, *))
            let zoo = try ZooPath(geometry)
            let bare = try BarePath(geometry)
            for pass in Pass.allCases {
                // Warm up both (first-touch of buffers, JIT, caches).
                for _ in 0..<2 {
                    try zoo.run(pass)
                    try bare.run(pass)
                }
                var zooTimes: [Double] = [], bareTimes: [Double] = []
                for _ in 0..<rounds {
                    zooTimes.append(try seconds { try zoo.run(pass) })
                    bareTimes.append(try seconds { try bare.run(pass) })
                }
                let zooRate = flops / median(zooTimes) / 1e9, bareRate = flops / median(bareTimes) / 1e9
                results.append(Result(caseName: benchmarkCase.name, pass: pass, zooGFlops: zooRate, oneDNNGFlops: bareRate,
                                      ratio: zooRate / bareRate))
            }
        }
        return results
    }

    private static func seconds(_ body: () throws -> Void) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }

    /// zoo's operations as a training step calls them.
    private struct ZooPath {
        let geometry: ConvolutionGeometry
        let input: Tensor, weight: Tensor, outputGradient: Tensor
        let forward: Primitive

        init(_ geometry: ConvolutionGeometry) throws {
            self.geometry = geometry
            input = try Tensor.filled(geometry.inputShape, 0.01).blocked()
            weight = Tensor.filled(geometry.weightShape, 0.01)
            outputGradient = try Tensor.filled(geometry.outputShape, 0.01).blocked()
            forward = try geometry.forwardPrimitive(source: input.layout, training: true)
        }

        func run(_ pass: Pass) throws {
            switch pass {
            case .forward:
                _ = try conv2d(input, weight: weight, options: Conv2DOptions(
                    stride: geometry.stride, padding: .explicit(top: geometry.padBefore[0], bottom: geometry.padAfter[0],
                                                                left: geometry.padBefore[1], right: geometry.padAfter[1]),
                    dilation: geometry.dilation, groups: geometry.groups))
            case .backwardData:
                _ = try conv2dBackwardData(outputGradient, weight: weight, geometry: geometry, forward: forward)
            case .backwardWeights:
                _ = try conv2dBackwardWeights(outputGradient, input: input, geometry: geometry, forward: forward)
            }
        }
    }

    /// The bare primitives: created once with every layout left to oneDNN, buffers allocated
    /// once in the layouts they chose, executed directly.
    private final class BarePath {
        let primitives: [Pass: Primitive]
        let buffers: [Pass: [(Int32, Buffer)]]

        init(_ geometry: ConvolutionGeometry) throws {
            var desc = dnnl_convolution_desc_t()
            var src = Layout.any(geometry.inputShape).desc, wei = Layout.any(geometry.dnnlWeightShape).desc
            var dst = Layout.any(geometry.outputShape).desc
            try check(dnnl_dilated_convolution_forward_desc_init(
                &desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei, nil, &dst, geometry.dnnlStride,
                geometry.dnnlDilation, geometry.dnnlPadBefore, geometry.dnnlPadAfter), "bench")
            let forward = try makePrimitive("bench", desc)
            try check(dnnl_dilated_convolution_backward_data_desc_init(
                &desc, dnnl_convolution_direct, &src, &wei, &dst, geometry.dnnlStride, geometry.dnnlDilation,
                geometry.dnnlPadBefore, geometry.dnnlPadAfter), "bench")
            let backwardData = try makePrimitive("bench", desc, hint: forward)
            try check(dnnl_dilated_convolution_backward_weights_desc_init(
                &desc, dnnl_convolution_direct, &src, &wei, nil, &dst, geometry.dnnlStride, geometry.dnnlDilation,
                geometry.dnnlPadBefore, geometry.dnnlPadAfter), "bench")
            let backwardWeights = try makePrimitive("bench", desc, hint: forward)
            func filled(_ primitive: Primitive, _ query: dnnl_query_t) -> Buffer {
                let buffer = Buffer(primitive.layout(query))
                let count = buffer.layout.byteCount / 4
                buffer.storage.pointer.bindMemory(to: Float.self, capacity: count).initialize(repeating: 0.01, count: count)
                return buffer
            }
            primitives = [.forward: forward, .backwardData: backwardData, .backwardWeights: backwardWeights]
            buffers = [
                .forward: [(DNNL_ARG_SRC, filled(forward, dnnl_query_src_md)), (DNNL_ARG_WEIGHTS, filled(forward, dnnl_query_weights_md)),
                           (DNNL_ARG_DST, filled(forward, dnnl_query_dst_md))],
                .backwardData: [(DNNL_ARG_DIFF_DST, filled(backwardData, dnnl_query_diff_dst_md)),
                                (DNNL_ARG_WEIGHTS, filled(backwardData, dnnl_query_weights_md)),
                                (DNNL_ARG_DIFF_SRC, filled(backwardData, dnnl_query_diff_src_md))],
                .backwardWeights: [(DNNL_ARG_SRC, filled(backwardWeights, dnnl_query_src_md)),
                                   (DNNL_ARG_DIFF_DST, filled(backwardWeights, dnnl_query_diff_dst_md)),
                                   (DNNL_ARG_DIFF_WEIGHTS, filled(backwardWeights, dnnl_query_diff_weights_md))],
            ]
        }

        func run(_ pass: Pass) throws {
            try primitives[pass]!.execute("bench", buffers[pass]!)
        }
    }
}
