import Foundation
import Testing
import ZooTensor
import ZooWeights
import ZooData

/// The files written by `converters/make_resize_references.py` with TensorFlow/Keras and
/// torchvision (versions in `index.json`).
enum ResizeReferences {
    static let folder = Bundle.module.resourceURL!.appendingPathComponent("ResizeReferences")

    struct Index: Decodable {
        var versions: [String: String]
        var inputs: [String: Input]
        var resize: [ResizeCase]
        var crops: [CropCase]
        var augmentations: [AugmentationCase]
    }

    struct Input: Decodable {
        var file: String
        var shape: [Int]
    }

    struct ResizeCase: Decodable {
        var name: String
        var file: String
        var input: String
        var height: Int
        var width: Int
        var convention: String
        var method: String
        var rows: [Int]
    }

    struct CropCase: Decodable {
        var name: String
        var file: String
        var input: String
        var inputWindow: [Int]
        var rows: [Int]
        var height: Int
        var width: Int
        var kind: String
        var target: [Int]?
        var resize: Int?
        var crop: [Int]?

        enum CodingKeys: String, CodingKey {
            case name, file, input, rows, height, width, kind, target, resize, crop
            case inputWindow = "input_window"
        }
    }

    struct AugmentationCase: Decodable {
        var name: String
        var file: String
        var input: String
        var kind: String
        var turns: Float?
        var heightFactor: Float?
        var widthFactor: Float?
        var fillMode: String?
        var fillValue: Float?
        var interpolation: String?
        var contrast: Float?
        var factor: Float?

        enum CodingKeys: String, CodingKey {
            case name, file, input, kind, turns, interpolation, contrast, factor
            case heightFactor = "height_factor", widthFactor = "width_factor"
            case fillMode = "fill_mode", fillValue = "fill_value"
        }
    }

    static func index() throws -> Index {
        try JSONDecoder().decode(Index.self, from: Data(contentsOf: folder.appendingPathComponent("index.json")))
    }

    /// A `.npy` array's values (as floats) and shape.
    static func array(_ file: String) throws -> (values: [Float], shape: [Int]) {
        let reader = try WeightFiles.open(folder.appendingPathComponent(file))
        let tensor = try #require(reader.tensors.first)
        return (try reader.floats(tensor.name), tensor.shape)
    }

    static func image(_ file: String) throws -> FloatImage {
        let (values, shape) = try array(file)
        try #require(shape.count == 3 && shape[2] == 3, "\(file) is not an HxWx3 image: \(shape)")
        return FloatImage(width: shape[1], height: shape[0], values: values)
    }

    /// The rows `rows` of `image`, in that order (the references keep a few rows of large outputs).
    static func rows(_ rows: [Int], of image: FloatImage) -> [Float] {
        rows.flatMap { row in image.values[(row * image.width * 3)..<((row + 1) * image.width * 3)] }
    }

    /// The largest absolute difference and how many values differ at all.
    static func compare(_ actual: [Float], _ expected: [Float]) -> (maximum: Float, differing: Int) {
        precondition(actual.count == expected.count, "\(actual.count) values, expected \(expected.count)")
        var maximum: Float = 0, differing = 0
        for (a, e) in zip(actual, expected) where a != e {
            maximum = max(maximum, abs(a - e))
            differing += 1
        }
        return (maximum, differing)
    }
}

/// Agreement with the frameworks, on values in `[0, 255]`.
enum Tolerance {
    /// Bilinear resizes: both frameworks compute in single precision in a slightly different
    /// order; zoo matches to a few 1e-5.
    static let bilinearResize: Float = 1e-3
    /// The affine sampler: Keras builds its matrix in single precision, zoo in double, so
    /// sample points differ by ~1e-6 pixel, times neighbour differences of up to 255.
    static let affineBilinear: Float = 5e-3
    /// Contrast and brightness: the channel means are summed in a different order.
    static let color: Float = 1e-3
}

@Suite("Transforms against TensorFlow/Keras and torchvision")
struct TransformReferenceTests {
    @Test("Resize matches tf.image.resize / keras Resizing and torchvision resize")
    func resize() throws {
        let index = try ResizeReferences.index()
        #expect(index.resize.count == 24)
        var report: [String] = []
        for entry in index.resize {
            let input = try ResizeReferences.image(try #require(index.inputs[entry.input]).file)
            let convention = try #require(ResizeConvention(rawValue: entry.convention))
            let method: ResizeMethod = entry.method == "nearest" ? .nearest(convention) : .bilinear(convention)
            let output = input.resized(height: entry.height, width: entry.width, method: method)
            #expect(output.height == entry.height && output.width == entry.width)
            let expected = try ResizeReferences.array(entry.file)
            #expect(expected.shape == [entry.rows.count, entry.width, 3], "\(entry.name)")
            let (maximum, differing) = ResizeReferences.compare(ResizeReferences.rows(entry.rows, of: output), expected.values)
            let tolerance: Float = entry.method == "nearest" ? 0 : Tolerance.bilinearResize
            #expect(maximum <= tolerance, "\(entry.name): max difference \(maximum) (\(differing) values differ)")
            report.append("\(entry.name): max \(maximum)")
        }
        print("resize references:\n  " + report.joined(separator: "\n  "))
    }

    @Test("smart_resize, torchvision's eval transform and CenterCrop padding")
    func crops() throws {
        let index = try ResizeReferences.index()
        #expect(index.crops.count == 4)
        for entry in index.crops {
            let input = try ResizeReferences.image(try #require(index.inputs[entry.input]).file)
            let window = entry.inputWindow
            let source = input.cropped(top: window[0], left: window[1], height: window[2], width: window[3])
            let output: FloatImage
            switch entry.kind {
            case "smart_resize":
                let target = try #require(entry.target)
                output = source.smartResized(height: target[0], width: target[1], method: .bilinear(.tensorflow))
            case "torchvision_eval":
                let crop = try #require(entry.crop)
                output = source.resizedShorterSide(to: try #require(entry.resize)).centerCropped(height: crop[0], width: crop[1])
            case "center_crop":
                let crop = try #require(entry.crop)
                output = source.centerCropped(height: crop[0], width: crop[1])
            default:
                Issue.record("unknown crop kind \(entry.kind)")
                continue
            }
            #expect(output.height == entry.height && output.width == entry.width, "\(entry.name)")
            let expected = try ResizeReferences.array(entry.file)
            let (maximum, differing) = ResizeReferences.compare(ResizeReferences.rows(entry.rows, of: output), expected.values)
            let tolerance: Float = entry.kind == "center_crop" ? 0 : Tolerance.bilinearResize
            #expect(maximum <= tolerance, "\(entry.name): max difference \(maximum) (\(differing) values differ)")
            print("crop reference \(entry.name): max \(maximum)")
        }
    }

    @Test("Rotation, zoom, translation, contrast and brightness match Keras with pinned amounts")
    func augmentations() throws {
        let index = try ResizeReferences.index()
        #expect(index.augmentations.count == 21)
        var report: [String] = []
        for entry in index.augmentations {
            let input = try ResizeReferences.image(try #require(index.inputs[entry.input]).file)
            let transform = try Self.transform(for: entry)
            var generator = SeededGenerator(seed: 1)
            let output = transform.apply(input, generator: &generator)
            let expected = try ResizeReferences.array(entry.file)
            let (actual, wanted) = (output.values, expected.values)
            if entry.fillMode == "wrap" {
                // zoo's wrap blends the last and the first pixel where TensorFlow repeats the
                // edge: compare only samples outside that seam, and check that the seam is all
                // that differs.
                let seam = try Self.seamMask(entry, width: input.width, height: input.height)
                let outside = ResizeReferences.compare(actual.indices.filter { !seam[$0 / 3] }.map { actual[$0] },
                                                       actual.indices.filter { !seam[$0 / 3] }.map { wanted[$0] })
                #expect(outside.maximum <= Tolerance.affineBilinear, "\(entry.name): max difference \(outside.maximum) outside the seam")
                report.append("\(entry.name): max \(outside.maximum) outside the seam (\(seam.filter { $0 }.count) of \(seam.count) pixels)")
                continue
            }
            let (maximum, differing) = ResizeReferences.compare(actual, wanted)
            let tolerance: Float
            switch entry.kind {
            case "contrast", "brightness": tolerance = Tolerance.color
            default: tolerance = entry.interpolation == "nearest" ? 0 : Tolerance.affineBilinear
            }
            #expect(maximum <= tolerance, "\(entry.name): max difference \(maximum) (\(differing) values differ)")
            report.append("\(entry.name): max \(maximum)")
        }
        print("augmentation references:\n  " + report.joined(separator: "\n  "))
    }

    /// Pixels whose sample point lies between the last and the first pixel of a wrapped axis.
    static func seamMask(_ entry: ResizeReferences.AugmentationCase, width: Int, height: Int) throws -> [Bool] {
        let map: AffineMap
        switch entry.kind {
        case "zoom":
            let zoomY = 1 + Double(try #require(entry.heightFactor)), zoomX = entry.widthFactor.map { 1 + Double($0) } ?? zoomY
            map = .zoom(x: zoomX, y: zoomY, width: width, height: height)
        case "translation":
            map = .translation(x: Double(try #require(entry.widthFactor)) * Double(width), y: Double(try #require(entry.heightFactor)) * Double(height))
        default:
            map = .rotation(angle: Double(try #require(entry.turns)) * 2 * .pi, width: width, height: height)
        }
        func inSeam(_ coordinate: Double, _ size: Int) -> Bool {
            let wrapped = coordinate - Double(size) * (coordinate / Double(size)).rounded(.down)
            return wrapped > Double(size - 1)
        }
        var mask: [Bool] = []
        for y in 0..<height {
            for x in 0..<width {
                let (column, row) = (Double(x), Double(y))
                let sourceX: Double = map.a0 * column + map.a1 * row + map.a2
                let sourceY: Double = map.b0 * column + map.b1 * row + map.b2
                mask.append(inSeam(sourceX, width) || inSeam(sourceY, height))
            }
        }
        return mask
    }

    /// The zoo transform with the same pinned amount as the Keras layer.
    static func transform(for entry: ResizeReferences.AugmentationCase) throws -> any ImageTransform {
        let interpolation = Interpolation(rawValue: entry.interpolation ?? "bilinear") ?? .bilinear
        let fillMode: FillMode
        switch entry.fillMode ?? "reflect" {
        case "reflect": fillMode = .reflect
        case "wrap": fillMode = .wrap
        case "nearest": fillMode = .nearest
        default: fillMode = .constant(entry.fillValue ?? 0)
        }
        switch entry.kind {
        case "rotation":
            return RandomRotation(factor: .fixed(try #require(entry.turns)), fillMode: fillMode, interpolation: interpolation)
        case "zoom":
            return RandomZoom(heightFactor: .fixed(try #require(entry.heightFactor)), widthFactor: entry.widthFactor.map { .fixed($0) },
                              fillMode: fillMode, interpolation: interpolation)
        case "translation":
            return RandomTranslation(heightFactor: .fixed(try #require(entry.heightFactor)), widthFactor: .fixed(try #require(entry.widthFactor)),
                                     fillMode: fillMode, interpolation: interpolation)
        case "contrast":
            // f pinned: uniform in [1 - lower, 1 + upper] with lower = 1 - f, upper = f - 1.
            let contrast = try #require(entry.contrast)
            return RandomContrast(lower: 1 - contrast, upper: contrast - 1)
        case "brightness":
            return RandomBrightness(factor: .fixed(try #require(entry.factor)))
        default:
            throw ReferenceError("unknown augmentation kind \(entry.kind)")
        }
    }
}

struct ReferenceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
