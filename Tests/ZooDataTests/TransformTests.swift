import Foundation
import Testing
import ZooTensor
import ZooData

/// Small images whose transforms are easy to predict.
enum Pictures {
    /// Value `f(row, column, channel)` at every position.
    static func make(width: Int, height: Int, _ f: (Int, Int, Int) -> Float) -> FloatImage {
        var values: [Float] = []
        values.reserveCapacity(width * height * 3)
        for row in 0..<height {
            for column in 0..<width {
                for channel in 0..<3 { values.append(f(row, column, channel)) }
            }
        }
        return FloatImage(width: width, height: height, values: values)
    }

    /// Distinct, non-zero values in `[1, 255]`, different per channel.
    static func noise(width: Int, height: Int, seed: UInt64 = 7) -> FloatImage {
        var generator = SeededGenerator(seed: seed)
        return make(width: width, height: height) { _, _, _ in 1 + (generator.nextUnitFloat() * 254).rounded() }
    }

    /// Every augmentation with non-trivial settings.
    static let everything = TransformPipeline(
        RandomFlip(horizontal: true, vertical: true),
        RandomRotation(factor: 0.1),
        RandomZoom(heightFactor: 0.2, widthFactor: FactorRange(-0.1, 0.3)),
        RandomTranslation(heightFactor: 0.1, widthFactor: 0.1),
        RandomPaddedCrop(padding: 4, mode: .reflect),
        RandomContrast(factor: 0.3),
        RandomBrightness(factor: 0.2),
        RandomChannelShift(range: 20))
}

@Suite("Transforms: determinism")
struct TransformDeterminismTests {
    let image = Pictures.noise(width: 32, height: 32)

    @Test("The same seed, epoch and index give the same output; any change gives another")
    func sameSeedSameOutput() {
        let pipeline = Pictures.everything
        let first = pipeline.apply(image, seed: 42, epoch: 3, index: 17)
        #expect(pipeline.apply(image, seed: 42, epoch: 3, index: 17) == first)
        #expect(pipeline.apply(image, seed: 43, epoch: 3, index: 17) != first)
        #expect(pipeline.apply(image, seed: 42, epoch: 4, index: 17) != first)
        #expect(pipeline.apply(image, seed: 42, epoch: 3, index: 18) != first)
    }

    @Test("Per-sample generators do not depend on thread scheduling")
    func threads() {
        let pipeline = Pictures.everything
        let serial = (0..<64).map { pipeline.apply(image, seed: 9, epoch: 1, index: $0) }
        let results = ResultBox(count: 64)
        DispatchQueue.concurrentPerform(iterations: 64) { index in
            results.set(index, pipeline.apply(image, seed: 9, epoch: 1, index: index))
        }
        #expect(results.values == serial)
    }

    @Test("Sample generators differ between neighbouring seeds, epochs and indices")
    func sampleGenerators() {
        var seen = Set<UInt64>()
        for seed: UInt64 in 0..<4 {
            for epoch in 0..<4 {
                for index in 0..<64 {
                    var generator = SeededGenerator.forSample(seed: seed, epoch: epoch, index: index)
                    seen.insert(generator.next())
                }
            }
        }
        #expect(seen.count == 4 * 4 * 64)
        var a = SeededGenerator.forSample(seed: 1, epoch: 2, index: 3)
        var b = SeededGenerator.forSample(seed: 1, epoch: 2, index: 3)
        #expect(a.next() == b.next())
    }

    @Test("Every transform keeps the size and gives finite values")
    func shapes() {
        for seed in 0..<20 {
            var generator = SeededGenerator(seed: UInt64(seed))
            let output = Pictures.everything.apply(image, generator: &generator)
            #expect(output.width == 32 && output.height == 32)
            #expect(output.values.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 255 })
        }
    }
}

/// Collects results written from several threads.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [FloatImage?]

    init(count: Int) { storage = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: FloatImage) {
        lock.lock()
        storage[index] = value
        lock.unlock()
    }

    var values: [FloatImage] {
        lock.lock()
        defer { lock.unlock() }
        return storage.map { $0! }
    }
}

@Suite("Transforms: identity settings")
struct TransformIdentityTests {
    let image = Pictures.noise(width: 24, height: 17)

    @Test("Zero factors leave the image unchanged")
    func zeroFactors() {
        let transforms: [any ImageTransform] = [
            RandomRotation(factor: 0), RandomZoom(heightFactor: 0), RandomZoom(heightFactor: 0, widthFactor: 0),
            RandomTranslation(heightFactor: 0, widthFactor: 0), RandomContrast(factor: 0), RandomBrightness(factor: 0),
            RandomChannelShift(range: 0), RandomChannelShift.keras(range: 0), RandomPaddedCrop(padding: 0),
            RandomFlip(horizontal: false, vertical: false),
        ]
        for transform in transforms {
            var generator = SeededGenerator(seed: 3)
            #expect(transform.apply(image, generator: &generator) == image, "\(type(of: transform))")
        }
    }

    @Test("The identity map, a same-size resize and a full crop are exact")
    func exactIdentities() {
        for interpolation in Interpolation.allCases {
            for fill in [FillMode.reflect, .wrap, .nearest, .constant(0)] {
                #expect(image.transformed(by: .identity, interpolation: interpolation, fillMode: fill) == image)
            }
        }
        for convention in ResizeConvention.allCases {
            #expect(image.resized(height: 17, width: 24, method: .bilinear(convention)) == image)
            #expect(image.resized(height: 17, width: 24, method: .nearest(convention)) == image)
        }
        #expect(image.centerCropped(height: 17, width: 24) == image)
        #expect(image.cropped(top: 0, left: 0, height: 17, width: 24) == image)
    }

    @Test("Resizing one axis only leaves the other axis's values alone")
    func oneAxis() {
        let rows = Pictures.make(width: 5, height: 8) { row, _, channel in Float(row * 10 + channel) }
        let wider = rows.resized(height: 8, width: 13, method: .bilinear(.torchvision))
        #expect(wider == Pictures.make(width: 13, height: 8) { row, _, channel in Float(row * 10 + channel) })
    }
}

@Suite("Transforms: behaviour on simple images")
struct TransformBehaviourTests {
    /// Value = column (channel 0), row (channel 1), 7 (channel 2).
    let gradient = Pictures.make(width: 6, height: 4) { row, column, channel in
        channel == 0 ? Float(column) : channel == 1 ? Float(row) : 7
    }

    @Test("Flips reverse the columns or the rows")
    func flips() {
        let horizontal = gradient.flipped(horizontally: true, vertically: false)
        #expect(horizontal == Pictures.make(width: 6, height: 4) { row, column, channel in
            channel == 0 ? Float(5 - column) : channel == 1 ? Float(row) : 7
        })
        let vertical = gradient.flipped(horizontally: false, vertically: true)
        #expect(vertical == Pictures.make(width: 6, height: 4) { row, column, channel in
            channel == 0 ? Float(column) : channel == 1 ? Float(3 - row) : 7
        })
        #expect(gradient.flipped(horizontally: true, vertically: true).flipped(horizontally: true, vertically: true) == gradient)
    }

    @Test("RandomFlip flips about half the time, each axis on its own")
    func flipFrequency() {
        let flip = RandomFlip(horizontal: true, vertical: true)
        var counts = [Int](repeating: 0, count: 4)
        for seed in 0..<2000 {
            var generator = SeededGenerator(seed: UInt64(seed))
            let output = flip.apply(gradient, generator: &generator)
            let horizontally = output[0, 0, 0] == 5, vertically = output[0, 0, 1] == 3
            counts[(horizontally ? 1 : 0) + (vertically ? 2 : 0)] += 1
        }
        #expect(counts.allSatisfy { $0 > 400 && $0 < 600 }, "outcome counts \(counts)")
    }

    @Test("A quarter turn of a square image turns the content counter-clockwise, with nothing to fill")
    func quarterTurn() {
        let square = Pictures.noise(width: 9, height: 9)
        var generator = SeededGenerator(seed: 0)
        let rotated = RandomRotation(factor: .fixed(0.25), fillMode: .reflect).apply(square, generator: &generator)
        // Content turns counter-clockwise: output (row y, column x) shows input (row x, column 8 - y).
        let expected = Pictures.make(width: 9, height: 9) { row, column, channel in square[column, 8 - row, channel] }
        #expect(zip(rotated.values, expected.values).allSatisfy { abs($0 - $1) < 1e-3 })
        let back = RandomRotation(factor: .fixed(-0.25)).apply(rotated, generator: &generator)
        #expect(zip(back.values, square.values).allSatisfy { abs($0 - $1) < 1e-3 })
    }

    @Test("A half turn with reflect equals flipping both axes")
    func halfTurn() {
        let image = Pictures.noise(width: 10, height: 7)
        let rotated = image.transformed(by: .rotation(angle: .pi, width: 10, height: 7), fillMode: .reflect)
        let flipped = image.flipped(horizontally: true, vertically: true)
        #expect(zip(rotated.values, flipped.values).allSatisfy { abs($0 - $1) < 1e-3 })
    }

    @Test("Positive zoom factors zoom out, negative ones zoom in")
    func zoomSign() {
        let image = Pictures.noise(width: 32, height: 32)
        var generator = SeededGenerator(seed: 0)
        let out = RandomZoom(heightFactor: .fixed(0.5), fillMode: .constant(0)).apply(image, generator: &generator)
        // Zooming out by 1.5 shows the whole image in the middle two thirds and fill around it.
        #expect(out[0, 0, 0] == 0 && out[31, 31, 2] == 0 && out[16, 0, 1] == 0)
        #expect(out[16, 16, 0] != 0)
        let inward = RandomZoom(heightFactor: .fixed(-0.5), fillMode: .constant(0)).apply(image, generator: &generator)
        #expect(inward.values.allSatisfy { $0 != 0 }, "zooming in reads only the inside")
        // Zooming in by 2 with nearest: output (y, x) reads input ((y - 15.5) / 2 + 15.5, ...).
        let nearest = RandomZoom(heightFactor: .fixed(-0.5), fillMode: .constant(0), interpolation: .nearest).apply(image, generator: &generator)
        #expect(nearest[0, 0, 0] == image[8, 8, 0])
        #expect(nearest[31, 31, 0] == image[23, 23, 0])
    }

    @Test("Positive translations move the content down and right")
    func translationDirection() {
        let image = Pictures.noise(width: 32, height: 16)
        var generator = SeededGenerator(seed: 0)
        let moved = RandomTranslation(heightFactor: .fixed(0.25), widthFactor: .fixed(0.25), fillMode: .constant(0))
            .apply(image, generator: &generator)
        for row in 4..<16 {
            for column in 8..<32 {
                #expect(moved[row, column, 1] == image[row - 4, column - 8, 1])
            }
        }
        #expect(moved[3, 20, 0] == 0 && moved[10, 7, 0] == 0)
    }

    @Test("Wrap repeats the image, across the seam too")
    func wrap() {
        let image = Pictures.noise(width: 8, height: 6)
        let whole = image.transformed(by: .translation(x: 8, y: -6), fillMode: .wrap)
        #expect(whole == image)
        let roll = image.transformed(by: .translation(x: 3, y: 2), fillMode: .wrap)
        #expect(roll == Pictures.make(width: 8, height: 6) { row, column, channel in image[(row + 4) % 6, (column + 5) % 8, channel] })
        // Half a pixel past the last column blends the last and the first column.
        let half = image.transformed(by: .translation(x: -0.5, y: 0), fillMode: .wrap)
        #expect(abs(half[2, 7, 0] - (image[2, 7, 0] + image[2, 0, 0]) / 2) < 1e-4)
    }

    @Test("Reflect mirrors about the edge of the last pixel; nearest repeats it")
    func fillModes() {
        let row = Pictures.make(width: 4, height: 1) { _, column, _ in Float(column * 10) }
        let reflected = row.transformed(by: .translation(x: 2, y: 0), fillMode: .reflect)
        #expect(reflected.values.enumerated().filter { $0.offset % 3 == 0 }.map(\.element) == [10, 0, 0, 10])
        let nearest = row.transformed(by: .translation(x: 2, y: 0), fillMode: .nearest)
        #expect(nearest.values.enumerated().filter { $0.offset % 3 == 0 }.map(\.element) == [0, 0, 0, 10])
        let constant = row.transformed(by: .translation(x: 2, y: 0), fillMode: .constant(-1))
        #expect(constant.values.enumerated().filter { $0.offset % 3 == 0 }.map(\.element) == [-1, -1, 0, 10])
    }

    @Test("Pad-and-crop keeps the size and shows a shifted window")
    func padAndCrop() {
        let image = Pictures.noise(width: 32, height: 32)
        var offsets = Set<[Int]>()
        for seed in 0..<400 {
            var generator = SeededGenerator(seed: UInt64(seed))
            let output = RandomPaddedCrop(padding: 4).apply(image, generator: &generator)
            #expect(output.width == 32 && output.height == 32)
            // Find the shift: the output is the input moved by (dy, dx), zeros elsewhere.
            let shift = (-4...4).flatMap { dy in (-4...4).map { dx in [dy, dx] } }.first { shift in
                (0..<32).allSatisfy { row in
                    (0..<32).allSatisfy { column in
                        let (r, c) = (row - shift[0], column - shift[1])
                        let expected: Float = (0..<32).contains(r) && (0..<32).contains(c) ? image[r, c, 0] : 0
                        return output[row, column, 0] == expected
                    }
                }
            }
            if let shift { offsets.insert(shift) } else { Issue.record("seed \(seed): not a shifted window") }
        }
        #expect(offsets.count == 81, "all 9 x 9 offsets appear, got \(offsets.count)")
    }

    @Test("Padding modes")
    func paddingModes() {
        let row = Pictures.make(width: 4, height: 1) { _, column, _ in Float(column + 1) }
        func firstChannel(_ image: FloatImage) -> [Float] { stride(from: 0, to: image.values.count, by: 3).map { image.values[$0] } }
        #expect(firstChannel(row.croppedWithPadding(top: 0, left: -2, height: 1, width: 8, mode: .reflect)) == [3, 2, 1, 2, 3, 4, 3, 2])
        #expect(firstChannel(row.croppedWithPadding(top: 0, left: -2, height: 1, width: 8, mode: .symmetric)) == [2, 1, 1, 2, 3, 4, 4, 3])
        #expect(firstChannel(row.croppedWithPadding(top: 0, left: -2, height: 1, width: 8, mode: .edge)) == [1, 1, 1, 2, 3, 4, 4, 4])
        #expect(firstChannel(row.croppedWithPadding(top: 0, left: -2, height: 1, width: 8, mode: .constant(9))) == [9, 9, 1, 2, 3, 4, 9, 9])
    }

    @Test("Contrast keeps each channel's mean and stays in the value range")
    func contrast() {
        let soft = Pictures.make(width: 8, height: 8) { row, column, channel in 100 + Float((row + column) % 5) * 4 + Float(channel) }
        let stronger = soft.contrastAdjusted(by: 1.5, clippedTo: 0...255)
        for channel in 0..<3 {
            let before = stride(from: channel, to: soft.values.count, by: 3).map { soft.values[$0] }.reduce(0, +)
            let after = stride(from: channel, to: stronger.values.count, by: 3).map { stronger.values[$0] }.reduce(0, +)
            #expect(abs(before - after) < 1e-2)
        }
        let image = Pictures.noise(width: 16, height: 16)
        for seed in 0..<20 {
            var generator = SeededGenerator(seed: UInt64(seed))
            let output = RandomContrast(lower: 0.9, upper: 1).apply(image, generator: &generator)
            #expect(output.values.allSatisfy { $0 >= 0 && $0 <= 255 })
            let unit = RandomContrast(factor: 0.9, valueRange: 0...1).apply(image, generator: &generator)
            #expect(unit.values.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
    }

    @Test("Brightness adds a fraction of the value range and clips")
    func brightness() {
        let image = Pictures.noise(width: 8, height: 8)
        var generator = SeededGenerator(seed: 0)
        #expect(RandomBrightness(factor: .fixed(1)).apply(image, generator: &generator).values.allSatisfy { $0 == 255 })
        #expect(RandomBrightness(factor: .fixed(-1)).apply(image, generator: &generator).values.allSatisfy { $0 == 0 })
        let shifted = RandomBrightness(factor: .fixed(0.1), valueRange: 0...1000).apply(image, generator: &generator)
        #expect(zip(shifted.values, image.values).allSatisfy { abs($0 - $1 - 100) < 1e-3 })
    }

    @Test("Channel shift: per channel by default; Keras's one shift clipped to the image's range")
    func channelShift() {
        let image = Pictures.make(width: 4, height: 4) { row, column, channel in Float(50 + row * 10 + column + channel) }
        var generator = SeededGenerator(seed: 5)
        let shifted = RandomChannelShift(range: 40, clipping: .unclipped).apply(image, generator: &generator)
        let deltas = (0..<3).map { shifted.values[$0] - image.values[$0] }
        #expect(Set(deltas.map { ($0 * 1000).rounded() }).count == 3, "three different shifts \(deltas)")
        for (offset, value) in shifted.values.enumerated() {
            #expect(abs(value - image.values[offset] - deltas[offset % 3]) < 1e-4)
        }
        #expect(deltas.allSatisfy { abs($0) <= 40 })
        let keras = RandomChannelShift.keras(range: 100).apply(image, generator: &generator)
        let (low, high) = (image.values.min()!, image.values.max()!)
        #expect(keras.values.allSatisfy { $0 >= low && $0 <= high })
        // One shift for all channels: a pixel far from the image's extremes moves by the same amount.
        let small = RandomChannelShift.keras(range: 5).apply(image, generator: &generator)
        let centre = (1 * 4 + 1) * 3
        let kerasDeltas = (0..<3).map { small.values[centre + $0] - image.values[centre + $0] }
        #expect(abs(kerasDeltas[0] - kerasDeltas[1]) < 1e-4 && abs(kerasDeltas[1] - kerasDeltas[2]) < 1e-4)
    }

    @Test("Factor ranges follow Keras: one number is symmetric, two are sorted")
    func factors() {
        let symmetric: FactorRange = 0.2
        #expect(symmetric.lower == -0.2 && symmetric.upper == 0.2)
        #expect(FactorRange(-0.3).upper == 0.3)
        #expect(FactorRange(0.3, -0.1) == FactorRange(-0.1...0.3))
        #expect(FactorRange.fixed(0.4).lower == 0.4 && FactorRange.fixed(0.4).upper == 0.4)
    }
}

@Suite("Transforms: resizing and cropping building blocks")
struct ResizeBuildingBlockTests {
    @Test("Any size in, any size out; nearest only copies input values")
    func sizes() {
        let image = Pictures.noise(width: 32, height: 32)
        for (height, width) in [(96, 96), (299, 299), (7, 50), (1, 1), (33, 31)] {
            for method in [ResizeMethod.bilinear(.tensorflow), .bilinear(.torchvision), .nearest(.tensorflow), .nearest(.torchvision)] {
                let output = image.resized(height: height, width: width, method: method)
                #expect(output.height == height && output.width == width)
                #expect(output.values.allSatisfy { $0 >= 1 && $0 <= 255 }, "\(method) stays within the input's range")
                if case .nearest = method {
                    let inputs = Set(image.values)
                    #expect(output.values.allSatisfy(inputs.contains))
                }
            }
        }
        let big = Pictures.noise(width: 224, height: 160)
        #expect(big.resized(height: 96, width: 96, method: .torchvision).width == 96)
    }

    @Test("A constant image stays constant under every resize")
    func constant() {
        let gray = Pictures.make(width: 37, height: 23) { _, _, channel in 100 + Float(channel) }
        for method in [ResizeMethod.bilinear(.tensorflow), .bilinear(.torchvision), .nearest(.tensorflow), .nearest(.torchvision)] {
            for (height, width) in [(96, 96), (5, 9), (23, 74)] {
                let output = gray.resized(height: height, width: width, method: method)
                #expect(output.values.enumerated().allSatisfy { abs($0.element - 100 - Float($0.offset % 3)) < 1e-4 })
            }
        }
    }

    @Test("Shorter side and centre crop follow torchvision's rounding")
    func torchvisionRules() {
        let wide = Pictures.noise(width: 224, height: 150)
        let resized = wide.resizedShorterSide(to: 100)
        #expect(resized.height == 100 && resized.width == 149)
        let tall = Pictures.noise(width: 150, height: 224)
        #expect(tall.resizedShorterSide(to: 100).width == 100 && tall.resizedShorterSide(to: 100).height == 149)
        // 149 - 96 = 53: the left edge is round(26.5) = 26 (half to even).
        let crop = resized.centerCropped(height: 96, width: 96)
        #expect(crop == resized.cropped(top: 2, left: 26, height: 96, width: 96))
        let evaluation = TransformPipeline.torchvisionEvaluation()
        var generator = SeededGenerator(seed: 0)
        let output = evaluation.apply(Pictures.noise(width: 500, height: 375), generator: &generator)
        #expect(output.width == 224 && output.height == 224)
    }

    @Test("smart_resize crops to the target aspect ratio before resizing")
    func smartResize() {
        let image = Pictures.noise(width: 200, height: 100)
        let square = image.smartResized(height: 50, width: 50)
        #expect(square == image.cropped(top: 0, left: 50, height: 100, width: 100).resized(height: 50, width: 50))
        let same = image.smartResized(height: 50, width: 100)
        #expect(same == image.resized(height: 50, width: 100))
    }
}

@Suite("Transforms: mean subtraction and preprocessing")
struct NormalizationTests {
    @Test("Mean pixel and mean image estimates, and their subtraction")
    func meanSubtraction() {
        let images = (0..<5).map { Pictures.noise(width: 6, height: 4, seed: UInt64($0)) }
        guard case .pixel(let pixel) = MeanSubtraction.estimate(from: images, kind: .pixel) else {
            Issue.record("expected a mean pixel")
            return
        }
        let centred = images.map { MeanSubtraction.pixel(pixel).subtracted(from: $0) }
        guard case .pixel(let residual) = MeanSubtraction.estimate(from: centred, kind: .pixel) else { return }
        #expect(residual.allSatisfy { abs($0) < 1e-3 })
        let meanImage = MeanSubtraction.estimate(from: images, kind: .image)
        let zero = MeanSubtraction.estimate(from: images.map { meanImage.subtracted(from: $0) }, kind: .image)
        guard case .image(let zeroImage) = zero else { return }
        #expect(zeroImage.values.allSatisfy { abs($0) < 1e-3 })
        var generator = SeededGenerator(seed: 0)
        #expect(meanImage.apply(images[0], generator: &generator) == meanImage.subtracted(from: images[0]))
    }

    @Test("Preprocessing on an image equals the NHWC formula")
    func preprocessing() {
        let image = Pictures.noise(width: 5, height: 3)
        for mode in Preprocessing.allCases {
            var values = image.values
            mode.apply(nhwc: &values)
            let output = mode.applied(to: image)
            #expect(zip(output.values, values).allSatisfy { abs($0 - $1) < 1e-5 }, "\(mode)")
            var generator = SeededGenerator(seed: 0)
            #expect(mode.apply(image, generator: &generator) == output)
        }
    }
}

@Suite("Transforms: the affine sampler's two paths")
struct AffineSamplerTests {
    @Test("Zoom and translation take a per-axis path that gives exactly what the general path gives")
    func separableMatchesGeneral() {
        let image = Pictures.noise(width: 23, height: 17)
        let maps: [AffineMap] = [
            .zoom(x: 1.3, y: 0.8, width: 23, height: 17), .zoom(x: 0.55, y: 1.9, width: 23, height: 17),
            .translation(x: 4.4, y: -3.7), .translation(x: -30.2, y: 18.5), .translation(x: 0.5, y: -0.5),
        ]
        for map in maps {
            // A negligible shear term sends the same map down the general path.
            var sheared = map
            sheared.a1 = 1e-30
            for interpolation in Interpolation.allCases {
                for fill in [FillMode.reflect, .wrap, .nearest, .constant(7)] {
                    let separable = image.transformed(by: map, interpolation: interpolation, fillMode: fill)
                    let general = image.transformed(by: sheared, interpolation: interpolation, fillMode: fill)
                    #expect(separable == general, "\(map) \(interpolation) \(fill)")
                }
            }
        }
    }

    @Test("then composes maps in application order")
    func composition() {
        let image = Pictures.noise(width: 16, height: 12)
        let shift = AffineMap.translation(x: 3, y: 0).then(.translation(x: 2, y: -1))
        #expect(shift == .translation(x: 5, y: -1))
        let zoomThenShift = AffineMap.zoom(x: 0.5, y: 0.5, width: 16, height: 12).then(.translation(x: 4, y: 2))
        let twoPasses = image.transformed(by: .zoom(x: 0.5, y: 0.5, width: 16, height: 12)).transformed(by: .translation(x: 4, y: 2))
        let onePass = image.transformed(by: zoomThenShift)
        // Equal wherever the second pass reads inside the first pass's output.
        for row in 2..<12 {
            for column in 4..<16 {
                #expect(abs(onePass[row, column, 0] - twoPasses[row, column, 0]) < 1e-3)
            }
        }
    }

    @Test("A full turn gives the image back (general path)")
    func fullTurn() {
        let image = Pictures.noise(width: 12, height: 9)
        for fill in [FillMode.reflect, .wrap, .nearest, .constant(0)] {
            let turned = image.transformed(by: .rotation(angle: 2 * .pi, width: 12, height: 9), fillMode: fill)
            #expect(zip(turned.values, image.values).allSatisfy { abs($0 - $1) < 1e-3 }, "\(fill)")
        }
    }
}
