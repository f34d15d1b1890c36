import Foundation
import Testing
import ZooData
import ZooTestSupport

/// The shared CIFAR archives, unpacked into a temporary folder by each test.
extension SharedData {
    static let cifar10 = folder.appendingPathComponent("cifar10-jpg.tar.gz")
    static let reptiles = folder.appendingPathComponent("cifar100-reptiles-png.tar.gz")

    static var hasCIFAR10: Bool { FileManager.default.fileExists(atPath: cifar10.path) }
    static var hasReptiles: Bool { FileManager.default.fileExists(atPath: reptiles.path) }

    /// Unpacks `archive` into a fresh temporary folder, runs `body` with it, and removes it.
    static func unpacked<T>(_ archive: URL, _ body: (URL) throws -> T) throws -> T {
        try withTemporaryFolder { folder in
            try unpack(archive, into: folder)
            return try body(folder)
        }
    }

    /// Decodes every image, returning the sum of all pixel bytes per class and the decoding rate.
    static func decodeAll(_ dataset: ImageFolder) throws -> (sums: [UInt64], imagesPerSecond: Double) {
        var sums = [UInt64](repeating: 0, count: dataset.classNames.count)
        let clock = ContinuousClock()
        let start = clock.now
        for index in 0..<dataset.count {
            let image = try dataset.image(at: index)
            #expect(image.width == 32 && image.height == 32)
            var sum: UInt64 = 0
            for byte in image.pixels { sum &+= UInt64(byte) }
            sums[dataset.label(at: index)] += sum
        }
        let seconds = (clock.now - start) / .seconds(1)
        return (sums, Double(dataset.count) / seconds)
    }
}

@Suite("Shared CIFAR data")
struct SharedDataTests {
    /// PIL's pixels (`Image.open(path).convert("RGB")`) at (row, column), and per class the sum of
    /// all pixel bytes of all images as PIL decodes them: every image decodes exactly as in PIL.
    static let cifar10Pixels: [(String, [(Int, Int, [UInt8])])] = [
        ("train/airplane/0000.jpg", [(0, 0, [200, 202, 197]), (16, 16, [8, 7, 12]), (31, 31, [236, 236, 238]), (5, 27, [243, 244, 239])]),
        ("train/truck/4999.jpg", [(0, 0, [41, 175, 236]), (16, 16, [98, 125, 144]), (31, 31, [7, 29, 43]), (5, 27, [187, 193, 205])]),
        ("test/cat/0000.jpg", [(0, 0, [167, 107, 47]), (16, 16, [118, 101, 85]), (31, 31, [27, 79, 129]), (5, 27, [74, 62, 24])]),
        ("test/ship/0999.jpg", [(0, 0, [74, 81, 136]), (16, 16, [245, 243, 248]), (31, 31, [200, 217, 224]), (5, 27, [72, 75, 118])]),
    ]
    static let cifar10Sums: [String: [UInt64]] = [
        "train": [2_186_204_273, 1_791_994_564, 1_833_960_162, 1_784_954_100, 1_716_898_429, 1_802_933_073, 1_637_044_310, 1_825_844_404, 2_050_009_624, 1_907_869_998],
        "test": [446_859_025, 358_589_104, 368_970_085, 356_286_621, 338_165_262, 367_868_856, 329_875_942, 369_178_501, 410_482_229, 386_464_382],
    ]
    static let reptilePixels: [(String, [(Int, Int, [UInt8])])] = [
        ("train/crocodile/0000.png", [(0, 0, [208, 181, 159]), (16, 16, [177, 160, 144]), (31, 31, [231, 216, 212]), (5, 27, [159, 143, 128])]),
        ("test/turtle/0099.png", [(0, 0, [0, 106, 167]), (16, 16, [5, 26, 45]), (31, 31, [92, 214, 236]), (5, 27, [24, 168, 224])]),
        ("train/snake/0499.png", [(0, 0, [79, 54, 57]), (16, 16, [144, 112, 102]), (31, 31, [180, 143, 124]), (5, 27, [144, 109, 101])]),
        ("test/dinosaur/0042.png", [(0, 0, [145, 120, 98]), (16, 16, [104, 116, 81]), (31, 31, [89, 67, 68]), (5, 27, [211, 164, 122])]),
    ]
    static let reptileSums: [String: [UInt64]] = [
        "train": [168_170_348, 211_278_997, 185_289_513, 181_899_120, 173_687_053],
        "test": [33_612_620, 40_833_734, 35_915_761, 38_733_398, 34_693_110],
    ]

    func checkPixels(_ root: URL, _ expectations: [(String, [(Int, Int, [UInt8])])]) throws {
        for (file, pixels) in expectations {
            let image = try ImageCodec.decode(contentsOf: root.appendingPathComponent(file))
            for (row, column, rgb) in pixels {
                #expect(pixel(image, row, column) == rgb, "\(file) at (\(row), \(column))")
            }
        }
    }

    @Test(
        "CIFAR-10 JPEG folders: 5000/1000 per class, sorted names, PIL's pixels",
        .enabled(if: SharedData.hasCIFAR10, "skipped: \(SharedData.cifar10.path) is missing (no ../shared/data on this machine)"))
    func cifar10() throws {
        try SharedData.unpacked(SharedData.cifar10) { root in
            for (split, perClass) in [("train", 5000), ("test", 1000)] {
                let clock = ContinuousClock()
                let start = clock.now
                let dataset = try ImageFolder(root: root.appendingPathComponent(split))
                let listing = clock.now - start
                print("CIFAR-10 \(split): listed \(dataset.count) files in \(listing)")
                #expect(listing < .seconds(5))
                #expect(dataset.classNames == cifar10Names)
                #expect(dataset.classCounts == Array(repeating: perClass, count: 10))
                #expect(dataset.warnings.isEmpty)
                #expect(dataset.sampleID(at: 0) == root.path + "/\(split)/airplane/0000.jpg")
                let (sums, rate) = try SharedData.decodeAll(dataset)
                print("CIFAR-10 \(split): decoded \(dataset.count) JPEGs on one thread, \(Int(rate)) images/s (\(ImageCodec.libraryVersions))")
                #expect(sums == Self.cifar10Sums[split])
            }
            try checkPixels(root, Self.cifar10Pixels)
        }
    }

    @Test(
        "CIFAR-100 reptile PNG folders: 500/100 per class, sorted names, PIL's pixels",
        .enabled(if: SharedData.hasReptiles, "skipped: \(SharedData.reptiles.path) is missing (no ../shared/data on this machine)"))
    func reptiles() throws {
        try SharedData.unpacked(SharedData.reptiles) { root in
            for (split, perClass) in [("train", 500), ("test", 100)] {
                let dataset = try ImageFolder(root: root.appendingPathComponent(split))
                #expect(dataset.classNames == ["crocodile", "dinosaur", "lizard", "snake", "turtle"])
                #expect(dataset.classCounts == Array(repeating: perClass, count: 5))
                #expect(dataset.warnings.isEmpty)
                let (sums, rate) = try SharedData.decodeAll(dataset)
                print("CIFAR-100 reptiles \(split): decoded \(dataset.count) PNGs on one thread, \(Int(rate)) images/s")
                #expect(sums == Self.reptileSums[split])
            }
            try checkPixels(root, Self.reptilePixels)
        }
    }
}
