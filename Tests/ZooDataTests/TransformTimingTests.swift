import Foundation
import Testing
import ZooTensor
import ZooData

/// Per-image timings on one thread. Skipped unless `ZOO_TRANSFORM_TIMING=1`; meaningful only in
/// release: `ZOO_TRANSFORM_TIMING=1 swift test -c release --filter TransformTiming`.
@Suite("Transform timings", .enabled(if: ProcessInfo.processInfo.environment["ZOO_TRANSFORM_TIMING"] == "1"))
struct TransformTimingTests {
    /// Microseconds per call: the best of five rounds of `iterations` calls.
    static func microseconds(iterations: Int, _ body: () -> FloatImage) -> Double {
        var best = Double.infinity
        var checksum: Float = 0
        for _ in 0..<5 {
            let start = ContinuousClock.now
            for _ in 0..<iterations { checksum += body().values[0] }
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            best = min(best, seconds / Double(iterations) * 1e6)
        }
        #expect(checksum.isFinite)
        return best
    }

    @Test("Resize and augmentation, microseconds per image")
    func timings() {
        let small = Pictures.noise(width: 32, height: 32)
        let large = Pictures.noise(width: 224, height: 224)
        var lines: [String] = []
        for method in [ResizeMethod.bilinear(.tensorflow), .bilinear(.torchvision), .nearest(.tensorflow)] {
            for size in [96, 299] {
                let time = Self.microseconds(iterations: 400) { small.resized(height: size, width: size, method: method) }
                lines.append(String(format: "resize 32→%d %@: %.1f µs", size, "\(method)", time))
            }
            let time = Self.microseconds(iterations: 200) { large.resized(height: 96, width: 96, method: method) }
            lines.append(String(format: "resize 224→96 %@: %.1f µs", "\(method)", time))
        }
        let augmentation = TransformPipeline(
            RandomFlip(horizontal: true),
            RandomRotation(factor: 0.1),
            RandomZoom(heightFactor: 0.2),
            RandomTranslation(heightFactor: 0.1, widthFactor: 0.1),
            RandomContrast(factor: 0.2))
        for size in [96, 299] {
            let image = small.resized(height: size, width: size)
            var index = 0
            let time = Self.microseconds(iterations: size == 96 ? 400 : 50) {
                index += 1
                return augmentation.apply(image, seed: 1, epoch: 0, index: index)
            }
            lines.append(String(format: "flip + rotation + zoom + translation + contrast at %d: %.1f µs", size, time))
            let withResize = TransformPipeline([Resize(size: size)] + augmentation.transforms)
            let total = Self.microseconds(iterations: size == 96 ? 400 : 50) {
                index += 1
                return withResize.apply(small, seed: 1, epoch: 0, index: index)
            }
            lines.append(String(format: "resize 32→%d + that pipeline: %.1f µs", size, total))
        }
        let image299 = small.resized(height: 299, width: 299)
        for transform in augmentation.transforms {
            var generator = SeededGenerator(seed: 3)
            let time = Self.microseconds(iterations: 50) { transform.apply(image299, generator: &generator) }
            lines.append(String(format: "  %@ alone at 299: %.1f µs", "\(type(of: transform))", time))
        }
        let cifar = TransformPipeline(RandomPaddedCrop(padding: 4), RandomFlip(horizontal: true))
        var index = 0
        let time = Self.microseconds(iterations: 2000) {
            index += 1
            return cifar.apply(small, seed: 1, epoch: 0, index: index)
        }
        lines.append(String(format: "CIFAR pad 4 + crop + flip at 32: %.1f µs", time))
        print("transform timings (one thread):\n  " + lines.joined(separator: "\n  "))
    }
}
