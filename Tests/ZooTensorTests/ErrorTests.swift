import Testing
import ZooTensor

/// Every operation reports a bad shape as an error naming itself and the shapes, never a crash.
@Suite("Shape errors")
struct ErrorTests {
    func message(_ body: () throws -> Tensor) -> String {
        do {
            _ = try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test("each operation names itself and both shapes")
    func namesOperationAndShapes() throws {
        let image = Tensor.zeros([2, 3, 8, 8])
        let matrix = Tensor.zeros([2, 5])
        let cases: [(String, [String], () throws -> Tensor)] = [
            ("conv2d", ["[2, 3, 8, 8]", "[4, 5, 3, 3]"], { try conv2d(image, weight: Tensor.zeros([4, 5, 3, 3])) }),
            ("conv2d", ["[4, 3, 3, 3]", "[5]"], { try conv2d(image, weight: Tensor.zeros([4, 3, 3, 3]), bias: Tensor.zeros([5])) }),
            ("conv2d", ["[2, 3, 8, 8]", "[4, 3, 9, 9]"], { try conv2d(image, weight: Tensor.zeros([4, 3, 9, 9])) }),
            ("conv2d", ["[2, 5]"], { try conv2d(matrix, weight: Tensor.zeros([4, 3, 3, 3])) }),
            ("dense", ["[2, 5]", "[4, 6]"], { try dense(matrix, weight: Tensor.zeros([4, 6])) }),
            ("dense", ["[2, 3, 8, 8]"], { try dense(image, weight: Tensor.zeros([4, 6])) }),
            ("add", ["[2, 3, 8, 8]", "[2, 5]"], { try add(image, matrix) }),
            ("concat", ["[2, 3, 8, 8]", "[2, 3, 4, 8]"], { try concat([image, Tensor.zeros([2, 3, 4, 8])]) }),
            ("batchNorm", ["[2, 3, 8, 8]", "[4]"], { try batchNormTraining(image, scale: Tensor.zeros([4]), shift: Tensor.zeros([3]), epsilon: 1e-3).output }),
            ("maxPool2d", ["[2, 3, 8, 8]"], { try maxPool2d(image, Pool2DOptions(kernel: 9)) }),
            ("avgPool2d", ["[2, 5]"], { try avgPool2d(matrix, Pool2DOptions(kernel: 2)) }),
            ("reshape", ["[2, 5]", "[3, 3]"], { try reshape(matrix, [3, 3]) }),
            ("softmaxCrossEntropy", ["[2, 5]", "[3]"], { try softmaxCrossEntropy(logits: matrix, labels: [0, 1, 2]) }),
            ("zeroPad2d", ["[2, 5]"], { try zeroPad2d(matrix, top: 1, bottom: 1, left: 1, right: 1) }),
        ]
        for (operation, shapes, body) in cases {
            let text = message(body)
            #expect(text.hasPrefix(operation + ":"), "\(text)")
            for shape in shapes { #expect(text.contains(shape), "\(text) should mention \(shape)") }
        }
    }

    @Test("bad arguments are errors too")
    func badArguments() {
        let image = Tensor.zeros([1, 2, 4, 4])
        #expect(message { try conv2d(image, weight: Tensor.zeros([2, 2, 1, 1]), options: Conv2DOptions(stride: 0)) }.contains("stride"))
        #expect(message { try conv2d(image, weight: Tensor.zeros([3, 1, 1, 1]), options: Conv2DOptions(groups: 2)) }.contains("groups"))
        var generator = SeededGenerator(seed: 0)
        #expect(message { try dropout(image, rate: 1, generator: &generator) }.contains("rate"))
        #expect(message { try softmaxCrossEntropy(logits: Tensor.zeros([1, 3]), labels: [3]) }.contains("label 3"))
        #expect(throws: TensorError.self) { try Tensor(shape: [2, 2], values: [1, 2, 3]) }
    }
}
